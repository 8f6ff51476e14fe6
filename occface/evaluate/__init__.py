"""Evaluating and using a trained generator.

* :mod:`.validate`: ``occface validate``, the paper's tables for a checkpoint and three
  training-free baselines (:mod:`.baselines`), with dlib's downstream metrics
  (:mod:`.downstream`) and the report files (:mod:`.report`);
* :mod:`.hallucinate`: ``occface hallucinate``, 128x128 faces from occluded 16x16 inputs;
* :mod:`.inference`: running a generator on uint8 images.

PSNR and SSIM themselves are in :mod:`occface.metrics`.
"""
