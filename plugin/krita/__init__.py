"""Krita adapter (runs inside Krita; standard library, PyQt5 and pyzmq only)."""
