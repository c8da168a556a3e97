"""torchvision's own GoogLeNet, for tests/import_weights_test.py: run with
the reference venv's Python (tools/reference_env.sh), never imported by the
engine or its tests.

  python torchvision_googlenet.py OUT_DIR IMAGES.npy [IMAGES.npy ...]

Builds `torchvision.models.googlenet` as the published one is built
(`transform_input=True`, the auxiliary heads in the state dict), with
randomised weights whose batch-normalisation statistics and affine
parameters matter (statistics of real activations, then perturbed), seed 0,
in eval mode. Writes the state dict as torchvision's weights API downloads
it (OUT_DIR/googlenet-random.pth, torch.save's zip format) and in the legacy
format of files published before PyTorch 1.6 (googlenet-random-legacy.pth),
and for each uint8 NHWC image batch the logits of the main head and of both
auxiliary heads (run in eval mode on the maps they read), after
torchvision's own preprocessing of those weights (ImageClassification: the
resize and centre crop at the images' own size, then ImageNet's mean and
standard deviation): OUT_DIR/<name>.npz.
"""

import os
import sys

import numpy as np
import torch
import torchvision
from torchvision.models import GoogLeNet_Weights


def randomised_googlenet() -> torch.nn.Module:
  torch.manual_seed(0)
  model = torchvision.models.googlenet(weights=None, aux_logits=True,
                                       transform_input=True, init_weights=True)
  norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
  for m in model.modules():  # logits of order 1, not 0.01
    if isinstance(m, torch.nn.Linear):
      torch.nn.init.normal_(m.weight, std=m.in_features ** -0.5)
      torch.nn.init.normal_(m.bias, std=0.1)
  model.train()
  for norm in norms:  # statistics of real activations, averaged
    norm.reset_running_stats()
    norm.momentum = None
  with torch.no_grad():
    model(torch.rand(8, 3, 224, 224) * 2 - 1)
    for norm in norms:
      c = norm.num_features
      norm.weight.uniform_(0.5, 1.5)
      norm.bias.normal_(0.0, 0.3)
      norm.running_mean.add_(torch.randn(c) * 0.1)
      norm.running_var.mul_(torch.empty(c).uniform_(0.8, 1.25))
  return model.eval()


def outputs(model, images: np.ndarray) -> dict:
  side = images.shape[1]
  preprocess = GoogLeNet_Weights.IMAGENET1K_V1.transforms(
      crop_size=side, resize_size=side)
  batch = torch.stack([preprocess(torch.from_numpy(i).permute(2, 0, 1))
                       for i in images])
  manual = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
            - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) \
      / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
  seen = {}
  hooks = [getattr(model, n).register_forward_hook(
      lambda m, i, o, n=n: seen.__setitem__(n, o))
           for n in ("inception4a", "inception4d")]
  with torch.no_grad():
    logits = model(batch)
    aux1, aux2 = model.aux1(seen["inception4a"]), model.aux2(
        seen["inception4d"])
  for h in hooks:
    h.remove()
  return {"logits": logits.numpy(), "aux1": aux1.numpy(),
          "aux2": aux2.numpy(),
          "preprocessing_gap": float((batch - manual).abs().max())}


def main(out_dir: str, *image_files: str) -> None:
  model = randomised_googlenet()
  state = model.state_dict()
  torch.save(state, os.path.join(out_dir, "googlenet-random.pth"))
  torch.save(state, os.path.join(out_dir, "googlenet-random-legacy.pth"),
             _use_new_zipfile_serialization=False)
  for path in image_files:
    name = os.path.splitext(os.path.basename(path))[0]
    np.savez(os.path.join(out_dir, name + ".npz"),
             **outputs(model, np.load(path)))
  print(f"torch {torch.__version__} torchvision {torchvision.__version__}")


if __name__ == "__main__":
  main(*sys.argv[1:])
