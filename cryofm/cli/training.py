"""Commands of the training side: `cryofm data simulate|maps`, `cryofm train`, `cryofm sample`.

Thin shells: each command maps its flags onto the library functions of `cryofm.datasets`,
`cryofm.training` and `cryofm.sampling` (imported inside the commands so `cryofm --help` is fast).
"""

from __future__ import annotations

from pathlib import Path

import click

from cryofm.cli.main import cli

__all__ = ["data", "train", "sample"]


@cli.group()
def data() -> None:
    """Build training patch stores (zarr) from atomic models or real maps."""


def _settings(rotations, patches, box, seed, b_min, b_max):
    from cryofm.datasets import SimulationSettings

    return SimulationSettings(rotations=rotations, patches=patches, box=box, seed=seed, b_range=(b_min, b_max))


_common = [
    click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Patch store to create (.zarr)."),
    click.option("--patches", default=3, show_default=True, help="Patches per simulated map (per map file)."),
    click.option("--box", default=64, show_default=True, help="Patch side in voxels (1.5 A)."),
    click.option("--seed", default=0, show_default=True, help="Base random seed."),
    click.option("--workers", default=2, show_default=True, help="Worker processes."),
    click.option("--force", is_flag=True, help="Replace an existing store."),
]


def _apply(options):
    def deco(f):
        for opt in reversed(options):
            f = opt(f)
        return f

    return deco


@data.command("simulate")
@click.argument("structures", nargs=-1, required=True, type=click.Path(path_type=Path))
@_apply(_common)
@click.option("--rotations", default=3, show_default=True, help="Random rotations (simulated maps) per entry.")
@click.option("--b-min", default=16.0, show_default=True, help="Smallest extra B-factor, A^2 (~2.0 A).")
@click.option("--b-max", default=81.0, show_default=True, help="Largest extra B-factor, A^2 (~4.5 A).")
@click.option("--validation", "validation", type=click.Path(path_type=Path), default=None,
              help="File of held-out entry ids (one a line), flagged split=1 in the store.")
def simulate(structures, output, patches, box, seed, workers, force, rotations, b_min, b_max, validation) -> None:
    """Simulate maps (1.5 A, gemmi electron form factors) from PDB/mmCIF files or folders into patches."""
    from cryofm.datasets import build_simulated_store

    path, n, errors = build_simulated_store(
        structures, output, settings=_settings(rotations, patches, box, seed, b_min, b_max),
        validation_entries=validation, workers=workers, overwrite=force,
    )
    for e in errors:
        click.echo(f"cryofm: warning: skipped {e}", err=True)
    click.echo(f"wrote {n} patches to {path}")


@data.command("maps")
@click.argument("maps", nargs=-1, required=True, type=click.Path(path_type=Path))
@_apply(_common)
@click.option("--validation", is_flag=True, help="Flag every patch as validation (split=1).")
def maps_(maps, output, patches, box, seed, workers, force, validation) -> None:
    """Cut patches from real MRC maps, resampled to 1.5 A, into a patch store."""
    from cryofm.datasets import SPLIT_TRAIN, SPLIT_VALIDATION, build_map_store

    path, n, errors = build_map_store(
        maps, output, settings=_settings(1, patches, box, seed, 16.0, 81.0), workers=workers, overwrite=force,
        split=SPLIT_VALIDATION if validation else SPLIT_TRAIN,
    )
    for e in errors:
        click.echo(f"cryofm: warning: skipped {e}", err=True)
    click.echo(f"wrote {n} patches to {path}")


@cli.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--resume", is_flag=True, help="Continue from the run's latest checkpoint (exactly).")
@click.option("--force", is_flag=True,
              help="Start over in a run folder that holds an earlier run: deletes its checkpoints and log.csv "
                   "first.  Without --resume or --force such a folder is refused.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
              help="Override the config's device.")
@click.option("--max-steps", type=int, default=None,
              help="Stop after this step (the lr schedule still spans the config's max_steps).")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="Override the config's run_dir.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(config, resume, force, device, max_steps, run_dir, quiet) -> None:
    """Train the prior as configured in CONFIG (YAML); torchrun launches it on several GPUs/nodes."""
    from cryofm.errors import CryofmInputError
    from cryofm.training import load_train_config
    from cryofm.training import train as run_training

    if resume and force:
        raise CryofmInputError("--resume and --force contradict each other: --resume continues the run, "
                               "--force deletes it; pass one")
    cfg = load_train_config(config, run_dir=str(run_dir) if run_dir else None)
    result = run_training(cfg, resume=resume, device=device, stop_at=max_steps, progress=not quiet, force=force)
    if result.checkpoint is not None:
        last = f"{result.losses[-1]:.4f}" if result.losses else "n/a"
        val = "n/a" if result.val_loss is None else f"{result.val_loss:.4f}"
        click.echo(f"step {result.step} ({result.stopped_by}), last loss {last}, val loss {val}, "
                   f"{result.seconds:.0f} s; checkpoint {result.checkpoint}")


@cli.command()
@click.option("-n", "--num", "n", default=4, show_default=True, help="Number of samples.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Folder for sample_NNN.mrc.")
@click.option("--steps", default=50, show_default=True, help="ODE steps.")
@click.option("--solver", type=click.Choice(["euler", "heun"]), default="heun", show_default=True)
@click.option("--box", default=64, show_default=True, help="Box side in voxels (multiple of the divisor).")
@click.option("--seed", default=0, show_default=True, help="Noise seed.")
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Weights (.safetensors); default: shipped.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite existing sample files.")
def sample(n, output, steps, solver, box, seed, model, device, force) -> None:
    """Draw unconditional samples from the prior (standardised units, 1.5 A voxels, MRC)."""
    from cryofm.errors import CryofmInputError
    from cryofm.io import Volume, write_map
    from cryofm.prior import load_prior
    from cryofm.progress import progress_bar
    from cryofm.sampling import sample_prior

    # everything is checked before the output folder is created
    if n < 1 or steps < 1:
        raise CryofmInputError(f"-n and --steps must be >= 1, got {n} and {steps}")
    if box < 1:
        raise CryofmInputError(f"--box must be a positive number of voxels (a multiple of the model's divisor), "
                               f"got {box}")
    if output.exists() and not output.is_dir():
        raise CryofmInputError(f"{output} exists and is not a folder; pass a folder for the samples with -o")
    prior = load_prior(model, device=device)
    if box % prior.divisor:
        raise CryofmInputError(f"--box {box} is not a multiple of the model's divisor {prior.divisor}; "
                               f"use e.g. --box {max(prior.divisor, box // prior.divisor * prior.divisor)}")
    targets = [output / f"sample_{i:03d}.mrc" for i in range(n)]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        raise CryofmInputError(f"{existing[0]} exists; use --force to overwrite")
    created = not output.exists()
    output.mkdir(parents=True, exist_ok=True)
    try:
        bar = progress_bar(total=n * steps, desc="sample", unit="step")
        xs = sample_prior(prior, n, box=box, steps=steps, solver=solver, seed=seed,
                          callback=lambda i, total: bar.update(1))
        bar.close()
        for x, p in zip(xs, targets):
            write_map(p, Volume(x[0].numpy(), prior.voxel_size), overwrite=force,
                      label=f"cryofm sample {solver} {steps} steps seed {seed}")
    except BaseException:
        if created and not any(output.iterdir()):
            output.rmdir()  # leave no empty folder behind
        raise
    click.echo(f"wrote {n} samples to {output}")


@cli.command("export-prior")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Weights file (.safetensors).")
@click.option("--store", type=click.Path(path_type=Path), default=None,
              help="Patch store whose validation patches measure the error-power table.")
@click.option("--patches", default=8, show_default=True, help="Validation patches for the error power.")
@click.option("--map-like-fraction", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of those patches first made to look like deposited maps (real maps err more).")
@click.option("--raw", is_flag=True, help="Export the raw weights instead of the EMA.")
@click.option("--force", is_flag=True, help="Overwrite the output.")
def export_prior_cmd(checkpoint, output, store, patches, map_like_fraction, raw, force) -> None:
    """Export a training checkpoint (a run folder or a step_* folder) as prior weights."""
    from cryofm.errors import CryofmInputError
    from cryofm.training import export_prior

    if output.suffix != ".safetensors":
        raise CryofmInputError(f"{output}: the weights file must end in .safetensors")
    if output.exists() and not force:
        raise CryofmInputError(f"{output} exists; use --force to overwrite")
    prior = export_prior(checkpoint, output, store=store, patches=patches, ema=not raw,
                         map_like_fraction=map_like_fraction)
    click.echo(f"wrote {output} ({prior.metadata.get('trained_steps')} steps, error power: {prior.error_power_source})")
