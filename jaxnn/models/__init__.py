"""Whole models built from jaxnn's layers, loading diffusers / transformers folders with torch's numbers.

Each model is a flax.nnx module whose attribute tree mirrors the torch class (diffusers'
``UNet2DConditionModel`` and ``AutoencoderKL``, transformers' ``CLIPTextModel`` and
``CLIPTextModelWithProjection``), so ``jaxnn.nnx.state_dict(model)`` has the torch keys with no
renaming. ``from_pretrained(path)`` reads the ``config.json`` and weights that ``save_pretrained``
writes (local folders only); ``save_pretrained(path)`` writes a folder diffusers / transformers load.
"""

from ._clip import BaseModelOutputWithPooling as BaseModelOutputWithPooling
from ._clip import CLIPTextModel as CLIPTextModel
from ._clip import CLIPTextModelOutput as CLIPTextModelOutput
from ._clip import CLIPTextModelWithProjection as CLIPTextModelWithProjection
from ._pipeline import StableDiffusionPipeline as StableDiffusionPipeline
from ._pipeline import StableDiffusionPipelineOutput as StableDiffusionPipelineOutput
from ._pipeline import StableDiffusionXLPipeline as StableDiffusionXLPipeline
from ._pipeline import StableDiffusionXLPipelineOutput as StableDiffusionXLPipelineOutput
from ._pretrained import Config as Config
from ._pretrained import PretrainedModel as PretrainedModel
from ._scheduling import DDIMScheduler as DDIMScheduler
from ._scheduling import DDIMSchedulerState as DDIMSchedulerState
from ._scheduling import Scheduler as Scheduler
from ._scheduling import SchedulerOutput as SchedulerOutput
from ._scheduling_ddpm import DDPMScheduler as DDPMScheduler
from ._scheduling_ddpm import DDPMSchedulerState as DDPMSchedulerState
from ._scheduling_dpmsolver import DPMSolverMultistepScheduler as DPMSolverMultistepScheduler
from ._scheduling_dpmsolver import DPMSolverMultistepSchedulerState as DPMSolverMultistepSchedulerState
from ._scheduling_euler import EulerAncestralDiscreteScheduler as EulerAncestralDiscreteScheduler
from ._scheduling_euler import EulerDiscreteScheduler as EulerDiscreteScheduler
from ._scheduling_euler import EulerSchedulerState as EulerSchedulerState
from ._scheduling_pndm import PNDMScheduler as PNDMScheduler
from ._scheduling_pndm import PNDMSchedulerState as PNDMSchedulerState
from ._unet import UNet2DConditionModel as UNet2DConditionModel
from ._unet import UNet2DConditionOutput as UNet2DConditionOutput
from ._vae import AutoencoderKL as AutoencoderKL
from ._vae import AutoencoderKLOutput as AutoencoderKLOutput
from ._vae import DecoderOutput as DecoderOutput
from ._vae import DiagonalGaussianDistribution as DiagonalGaussianDistribution
