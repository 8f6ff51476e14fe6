"""One face photo in, one aligned training pair out: the per-face image stages.

* :mod:`.decode`: bytes -> RGB (EXIF orientation, 16-bit, CMYK, alpha);
* :mod:`.detect` / :mod:`.dlib_models`: dlib detection and 68 landmarks;
* :mod:`.aligned`: pre-aligned input (no detector: a box from the frame, plausibility checks);
* :mod:`.align`: similarity alignment to the versioned template, the 128x128 crop;
* :mod:`.occlude`: filling the masked pixels;
* :mod:`.resize`: the exact downsampling rules (128 -> 16);
* :mod:`.heatmaps`: landmark heatmaps (numpy float / uint8, torch).
"""
