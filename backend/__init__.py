"""clickmatte.backend"""
