"""Training the Pro-UIGAN reference model (``occface train-ref``; docs/training.md).

The paper's three training steps (Pro-UIGAN, Sec. III-G), as consecutive stages of one run:

1. pre-train UI-block 1 (and the learned landmark prior) with L_net1 (Eq. 12), whose
   psi * L_adv^l term needs Local-D: Local-D is trained on block 1's 16x16 central crops
   alongside (``stage1_adversarial=False`` drops the term instead);
2. pre-train UI-block 2 with L_net2 (Eq. 13); block 1 is initialised and frozen
   (``stage2_trains="blocks12"`` trains it too);
3. train the whole generator with L_G (Eq. 15) and Local-D / Global-D with Eqs. 8, 9.
   Per-block learning rates 1e-4, 1e-4, 1e-3 (``lrs``); Adam.

Each stage starts with fresh Adam states.  The step counter runs across stages: steps
``[0, s1)`` are stage 1, ``[s1, s1+s2)`` stage 2, then stage 3.  A stage of 0 steps is
skipped.

Data order is a pure function of ``(seed, epoch)`` (``occface.data.epoch_order``): global
batch ``k`` of an epoch is ``perm[k*B:(k+1)*B]`` whatever the number of ranks, so a
checkpoint stores only ``(epoch, position)``.  Nothing in a step draws random numbers;
torch's CPU (and CUDA) generator states are saved and restored all the same.

Checkpoints (:mod:`.checkpoint`): ``last.pt`` every ``ckpt_every`` steps, at a stop and at
the end of every stage; ``stage{k}.pt`` at the end of stage ``k``; ``generator.pt`` (the
generator and the metadata only) whenever ``last.pt`` is written.  A non-finite loss stops
the run with :class:`NonFiniteLoss` before anything is written, so ``last.pt`` is always
the last good state.  ``run.json`` holds the resolved config, the data manifest's SHA-256
and the versions; every checkpoint holds the same.

Modules: :mod:`.config`, :mod:`.schedule` (pure functions of the step), :mod:`.inputs`
(batches), :mod:`.checkpoint`, :mod:`.distributed`, :mod:`.grids` (pictures) and
:mod:`.loop` (the loop, top to bottom).  The library reads no environment variables: the
CLI maps torchrun's ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_ADDR`` /
``MASTER_PORT`` onto :func:`init_distributed` and the VGG variables onto
``TrainConfig.vgg16`` / ``vgg19`` / ``vgg_hub_dir``.
"""

from ..format.manifest import manifest_sha256
from .checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, export_generator, load_checkpoint,
                         load_generator, loss_weights_from_dict, model_config_from_dict, save_checkpoint)
from .config import AMP_MODES, EXECUTION_FIELDS, STAGE2_TRAINS, ConfigMismatch, NonFiniteLoss, RunExists, TrainConfig
from .distributed import DistContext, init_distributed
from .grids import image_grid
from .inputs import heatmap_note, prepare_batch
from .loop import train, train_step
from .schedule import batch_plan, decay_factor, lr_at, stage_bounds, stage_of

__all__ = ["TrainConfig", "train", "train_step", "lr_at", "decay_factor", "stage_of", "stage_bounds",
           "batch_plan", "prepare_batch", "heatmap_note", "image_grid", "save_checkpoint", "load_checkpoint",
           "load_generator", "model_config_from_dict", "loss_weights_from_dict", "export_generator",
           "manifest_sha256", "DistContext", "init_distributed", "NonFiniteLoss",
           "ConfigMismatch", "RunExists", "EXECUTION_FIELDS", "AMP_MODES", "STAGE2_TRAINS", "CHECKPOINT_FORMAT",
           "CHECKPOINT_VERSION"]
