"""rollup/cli"""
