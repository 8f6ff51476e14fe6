"""Benchmarks behind ``occface bench``: each times occface against a baseline in the same run
and reports ratios (figures and commands in docs/benchmarks.md).

* :mod:`.build`: the build against bare dlib detection + landmarks, worker scaling, variants,
  accuracy (:mod:`.landmarks`: detection rate and NRMSE; :mod:`.crops`: tight crops of photos);
* :mod:`.data`: loader items against JPEG decode + resize;
* :mod:`.masks`: mask generators against a PConv-style baseline;
* :mod:`.model`: generator size, FLOPs and speed.
"""
