"""occface: reproducible occluded-face datasets and a Pro-UIGAN reference model.

Importing occface is cheap and has no side effects: no network, no model
loading, no environment reads.  Heavy parts (dlib, torch, h5py) are imported
by the modules that need them.
"""

__version__ = "0.1.0"
