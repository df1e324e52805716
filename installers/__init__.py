"""clickmatte.installers"""
