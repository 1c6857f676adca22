"""``edgekit bundle``: make a bundle from a model and a preset, list presets, check a bundle.

Exit codes: 0 done; 2 usage or edgekit error (the message says what to do).

Example::

    $ edgekit bundle presets
    $ edgekit bundle create face.tflite --preset blazeface --output bundles/blazeface
    $ edgekit bundle create det.onnx --preset ppocr-det --output ppocr-det.zip
    $ edgekit bundle create det.onnx --preset ppocr-det --output det.zip --plan pi5-plan.toml   # plans/<device>.toml
    $ edgekit bundle check bundles/blazeface --runtime openvino
"""

from __future__ import annotations

from typing import Any

import click

from edgekit.cli.output import emit, output_options

__all__ = ["bundle"]


@click.group()
def bundle() -> None:
    """Model bundles: a model plus edgekit.toml describing its pre- and post-processing (docs/bundles.md)."""


@bundle.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--preset", required=True, help="Pre/post-processing preset (`edgekit bundle presets`).")
@click.option("--output", "-o", required=True, type=click.Path(), help="Bundle folder to write, or NAME.zip.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Text file with one label per line, copied into the bundle.")
@click.option("--size", default=None, help="Model input WIDTHxHEIGHT, for a model whose input size is dynamic.")
@click.option("--runtime", "-r", default=None, help="Runtime used to read the model and check the bundle.")
@click.option("--force", is_flag=True, help="Replace an existing bundle at --output.")
@click.option("--plan", "plans", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Deployment plan for this model (`edgekit tune MODEL --device NAME -o plan.toml`), embedded as "
                   "plans/<device>.toml and used by load_bundle/edgekit run on that device (repeatable).")
def create(model: str, preset: str, output: str, labels: str | None, size: str | None, runtime: str | None,
           force: bool, plans: tuple[str, ...]) -> None:
    """Wrap MODEL with a preset into a bundle; the bundle is loaded once to check it fits the model."""
    from edgekit.pipeline.create import create_bundle

    wh = None
    if size is not None:
        try:
            w, h = (int(v) for v in size.lower().split("x"))
            wh = (w, h)
        except ValueError:
            raise click.BadParameter(f"expected WIDTHxHEIGHT such as 192x48, got {size!r}.",
                                     param_hint="--size") from None
    path = create_bundle(model, preset, output, labels=labels, size=wh, runtime=runtime, force=force, plans=plans)
    click.echo(f"wrote {path} (preset {preset}); try: edgekit run {path} --input photo.jpg --output annotated.jpg")


@bundle.command()
@output_options
def presets(fmt: str, output: str | None) -> None:
    """List the built-in presets."""
    from edgekit.pipeline.create import preset_names, preset_text

    rows = []
    for name in preset_names():
        desc = next((ln.split("=", 1)[1].strip().strip('"') for ln in preset_text(name).splitlines()
                     if ln.startswith("description")), "")
        rows.append({"preset": name, "description": desc})
    emit(rows, fmt=fmt, output=output, title="edgekit bundle presets")


@bundle.command()
@click.argument("path", type=click.Path(exists=True))
@click.option("--runtime", "-r", default=None, help="Runtime to load the model with.")
@click.option("--device", "-d", default=None, help="Device profile: a name, a .toml path, or 'auto'.")
@output_options
def check(path: str, runtime: str | None, device: str | None, fmt: str, output: str | None) -> None:
    """Validate bundle PATH and load its model: prints what it declares and where it runs."""
    from edgekit.pipeline.bundle import load_bundle

    with load_bundle(path, runtime=runtime, device=device) as pipe:
        cfg = pipe.config
        rows: list[dict[str, Any]] = [
            {"field": "bundle", "value": f"{cfg.name}: {cfg.description}".rstrip(": ")},
            {"field": "folder", "value": str(cfg.root)},
            {"field": "model", "value": cfg.model.name},
            {"field": "inputs", "value": [str(s) for s in pipe.predictor.inputs]},
            {"field": "outputs", "value": [str(s) for s in pipe.predictor.outputs]},
            {"field": "preprocess", "value": f"{cfg.pre.color} {cfg.pre.resize} {cfg.pre.size or ''} "
                                             f"{cfg.pre.layout} {cfg.pre.dtype}".replace("  ", " ")},
            {"field": "postprocess", "value": cfg.post.kind + (f" ({len(cfg.post.labels)} labels)"
                                                               if cfg.post.labels else "")},
            {"field": "plans", "value": sorted(cfg.plans) or "none"},
            {"field": "placement", "value": str(pipe.placement)},
        ]
        if pipe.placement.plan:
            rows.append({"field": "plan used", "value": pipe.placement.plan})
    emit(rows, fmt=fmt, output=output, title=f"bundle {path}: valid")
