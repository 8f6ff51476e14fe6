"""Pro-UIGAN reference model (see docs/model_card.md).

A clean-room PyTorch implementation of the paper ("Pro-UIGAN: Progressive Face
Hallucination from Occluded Thumbnails", Sec. III): the
generator Pro-UInet (three UI-blocks, 16 -> 32 -> 64 -> 128), Local-D and
Global-D, the losses of Eqs. 4-15, and in-project VGG-16/19 feature stacks
that load torchvision's ImageNet checkpoints.  Every departure of the public
code is a :class:`ProUIGANConfig` / :class:`LossWeights` option.

Importing this package imports torch but reads no files, environment
variables or network.
"""

from .attention import (CrossModalAttention, cosine_attention, cosine_attention_naive,
                        softmax_attention, softmax_attention_naive)
from .config import BLOCK_INPUT_SIZES, BLOCK_OUTPUT_SIZES, HR_SIZE, LR_SIZE, ProUIGANConfig
from .discriminators import GlobalDiscriminator, LocalDiscriminator, central_crop
from .generator import GeneratorOutput, PriorEstimator, ProUIGenerator, UIBlock
from .losses import (VARIANTS, LossWeights, ProUIGANLoss, adversarial_d_loss, adversarial_g_loss,
                     gram_matrix, heatmap_loss, heatmap_pyramid, image_pyramid, mse_loss,
                     style_loss)
from .vgg import (VGG, VGG_FILES, VGG_SHA256_PREFIXES, VGGFeatures, VGGWeightsCorrupt,
                  VGGWeightsMissing, download_vgg, imagenet_normalise, load_vgg, load_vgg_state_dict)

__all__ = [
    "BLOCK_INPUT_SIZES", "BLOCK_OUTPUT_SIZES", "CrossModalAttention", "GeneratorOutput",
    "GlobalDiscriminator", "HR_SIZE", "LR_SIZE", "LocalDiscriminator",
    "LossWeights", "PriorEstimator", "ProUIGANConfig", "ProUIGANLoss", "ProUIGenerator",
    "UIBlock", "VARIANTS", "VGG", "VGG_FILES", "VGG_SHA256_PREFIXES", "VGGFeatures",
    "VGGWeightsCorrupt", "VGGWeightsMissing", "adversarial_d_loss", "download_vgg",
    "adversarial_g_loss", "central_crop", "cosine_attention", "cosine_attention_naive",
    "gram_matrix", "heatmap_loss", "heatmap_pyramid", "image_pyramid", "imagenet_normalise",
    "load_vgg", "load_vgg_state_dict", "mse_loss", "softmax_attention",
    "softmax_attention_naive", "style_loss",
]
