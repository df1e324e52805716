"""GIMP 3 adapter (runs inside GIMP; standard library, gi and pyzmq only)."""
