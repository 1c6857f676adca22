"""Re-fit the latency parameters edgekit ships in ``devices/emulation/calibrated/`` from the published figures.

For each device with figures in ``devices/emulation/calibration/`` (or those named), the figures of the
runtime its targets use (:func:`~edgekit.emulation.calibrate.select_runtime`), latencies over throughputs
where enough (:func:`~edgekit.emulation.calibrate.select_metric`), fitted from the family spec's hand-set
values with leave-one-network-out error, written as ``<device>-<unit>.toml`` (a spec that ``extends``
the family). A fit that does not reach the data is reported and not written. Run it after changing the
latency model or the figures, then ``python benchmarks/emulation.py --skip-wall``.

    python scripts/ship_calibrations.py [DEVICE ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import tempfile
from pathlib import Path

from edgekit._version import __version__
from edgekit.devices import get_profile
from edgekit.emulation.calibrate import cross_validate, fit
from edgekit.emulation.calibration_toml import spec_table
from edgekit.emulation.figures import load_figures
from edgekit.emulation.samples import figure_samples, select_metric, select_runtime
from edgekit.emulation.spec import accelerator_spec, hand_set
from edgekit.testing.networks import NETWORKS, graph_builder
from edgekit.tomlfile import toml_text

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "devices" / "emulation" / "calibrated"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("devices", nargs="*", help="device profiles (default: every one with figures)")
    args = ap.parse_args()
    logging.getLogger().setLevel(logging.ERROR)
    builder = graph_builder(Path(tempfile.mkdtemp(prefix="edgekit-ship-")))
    for device in args.devices or load_figures(buildable=NETWORKS).devices():
        profile = get_profile(device)
        kept, _ = select_metric(select_runtime(load_figures(device, buildable=NETWORKS).figures, profile)[0])
        samples, _ = figure_samples(kept, profile, builder)
        for unit in dict.fromkeys(s.unit for s in samples):
            mine = [s for s in samples if s.unit == unit]
            family, base = hand_set(accelerator_spec(profile, unit))
            result, cv = fit(mine, base), cross_validate(mine, base)
            summ = cv.summary()
            print(f"{device} {unit}: {len({s.network for s in mine})} networks, {len(mine)} figures; LOO median "
                  f"{summ['before_median']:.0%} -> {summ['after_median']:.0%}, worst {summ['before_worst']:.0%} -> "
                  f"{summ['after_worst']:.0%}; fitted {', '.join(f'{k}={v:.4g}' for k, v in result.fitted.items())}")
            for w in result.warnings:
                print(f"  warning: {w}")
            if not result.reached:
                print("  not written: the fit does not reach the data")
                continue
            data = f"devices/emulation/calibration/{device}.toml ({len(mine)} published figures)"
            table = spec_table(family, result, cv, data=data, runtime=mine[0].label,
                               date=dt.date.today().isoformat(), version=__version__)
            path = OUT / f"{device}-{unit}.toml"
            path.write_text(toml_text(table, header=(
                f"{device}'s {unit}: latency parameters fitted by scripts/ship_calibrations.py to "
                f"devices/emulation/calibration/{device}.toml\n(edgekit.emulation.calibrate, as `edgekit devices "
                f"calibrate {device} --from` that file does). Only the fitted parameters are here; the rest,\nand "
                f"the operator list, come from the spec it extends ({family}). Provenance and leave-one-network-out "
                "error in [calibration].")))
            print(f"  wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
