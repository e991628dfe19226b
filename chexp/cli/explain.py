"""Explain your own radiographs: Latent Shift, the IBA family and the baselines on image files or
folders (PNG, JPEG, DICOM), with a self-contained HTML report per image.

Examples::

    chexp explain scan.png --model phantom --out explained
    chexp explain scans/ --model densenet121-res224-all --target Effusion --method latentshift,iba,gradcam --out out
    chexp explain scan.dcm --model my_models:build --model-targets Effusion,Mass --method iba,gradcam \\
        --statistics-images train_images/ --out out

--model: ``phantom`` or ``cohen`` (chexp's own models, offline once trained), a torchxrayvision
name (weights downloaded by torchxrayvision; an error says where to put them offline), a
TorchScript file, or ``module:factory`` returning a torch.nn.Module. A user's model receives
images (B, 1, S, S), float32, in [-1024, 1024] (torchxrayvision's range: every file is center
cropped to a square and resized to S = --input-size, default 224 or the module's ``input_size``)
and returns (B, T) logits (--model-returns probability if it returns probabilities); its target
names are its ``targets`` attribute or --model-targets. Only Latent Shift needs an autoencoder.
IBA needs per-unit statistics of training-like images: chexp's models use their training
images; other models use --statistics-images, or else the explained images (with a warning).

Exit status 0 when every file was explained, 1 when some could not be read (reported, skipped),
2 on a usage error.
"""

from __future__ import annotations

import argparse
import json

from .options import device_name, positive_int


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _run(args: argparse.Namespace) -> int:
    from ..explain import explain

    run = explain(
        args.inputs, args.model, targets=args.target, methods=args.method, out=args.out, device=args.device,
        autoencoder=args.autoencoder, search=args.search, n_frames=args.frames,
        statistics_images=args.statistics_images, model_targets=args.model_targets,
        input_size=args.input_size, model_returns=args.model_returns, iba_layer=args.iba_layer,
        iba_layers=args.iba_layers, progress=not args.json,
    )
    if args.json:
        print(json.dumps(run.summary()))
    else:
        for path, message in run.failures.items():
            print(f"skipped {path}: {message}")
        print(f"explained {len(run.images)} image(s) into {run.out}: {run.index}")
    return 1 if run.failures else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Define ``chexp explain`` on ``parser``: its options and help; ``args.func(args)`` runs it."""
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files and/or folders")
    parser.add_argument("--model", required=True,
                        help="phantom, cohen, a torchxrayvision name, FILE.pt or module:factory")
    parser.add_argument("--target", type=_csv, default=["top"],
                        help="target name(s), comma-separated, or top / topN (highest predictions; default top)")
    parser.add_argument("--method", type=_csv, default=["latentshift", "iba", "gradcam"],
                        help="methods, comma-separated (chexp methods lists them; latentshift = latentshift-max; "
                        "default latentshift,iba,gradcam)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", type=device_name, default="cpu", help="torch device (default cpu)")
    parser.add_argument("--autoencoder", default=None,
                        help="autoencoder for Latent Shift: phantom, cohen, 101-elastic (default: the model's)")
    parser.add_argument("--search", default=None, help="lambda search rule of Latent Shift (default: the paper's)")
    parser.add_argument("--frames", type=positive_int, default=10, help="Latent Shift frames (default 10)")
    parser.add_argument("--statistics-images", default=None, metavar="FOLDER",
                        help="training-like images for the IBA statistics of a user's model")
    parser.add_argument("--model-targets", type=_csv, default=None, help="target names of a user's model")
    parser.add_argument("--input-size", type=positive_int, default=None, help="input side of a user's model")
    parser.add_argument("--model-returns", choices=("logit", "probability"), default="logit",
                        help="what a user's model returns (default logit)")
    parser.add_argument("--iba-layer", default=None, metavar="LAYER",
                        help="IBA's bottleneck layer (dotted module name; default: the model family's)")
    parser.add_argument("--iba-layers", type=_csv, default=None, metavar="A,B,C",
                        help="Multi-layer IBA's layers, shallow to deep (default: the model family's)")
    parser.add_argument("--json", action="store_true", help="print one JSON summary instead of a progress bar")
    parser.set_defaults(func=_run)
