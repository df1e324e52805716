"""clickmatte.plugin"""
