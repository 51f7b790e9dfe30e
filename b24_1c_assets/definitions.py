"""The b24_1c_assets code location: every asset, check, job, schedule and sensor under `defs/`, with their resources.

A module dropped into `defs/` is picked up without touching this file: Dagster's defs-folder loader takes each
module's one `defs = dg.Definitions(...)` (a module without one contributes its module-level assets, jobs and
sensors). Modules export `defs` only: the loader ignores module-level objects when a `Definitions` is present,
so an asset listed there is never registered twice.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

import b24_1c_assets.defs
from b24_1c_assets.defs.analytics.publish import build_analytics_copy
from b24_1c_assets.lib.resources import build_resources


def load_defs_folder(defs_root=b24_1c_assets.defs) -> dg.Definitions:
    """Everything the modules under `defs_root` define, merged.

    The tree is built from the module itself, not from pyproject.toml's [tool.dg] (what `load_from_defs_folder`
    reads), so an installed copy of the package loads the same way as the checkout.
    """
    package_dir = Path(defs_root.__file__).parent
    with warnings.catch_warnings():
        # Dagster 1.13 marks the module loader under the defs-folder loader "preview"; it printed on every load
        warnings.simplefilter("ignore", category=dg.PreviewWarning)
        tree = dg.ComponentTree.from_module(defs_module=defs_root, project_root=package_dir.parent.parent)
        return tree.build_defs()


@dg.definitions
def defs() -> dg.Definitions:
    loaded = dg.Definitions.merge(load_defs_folder(), dg.Definitions(resources=build_resources()))
    # The analysts' copy is published last in every job that selects it: it depends on every other asset.
    upstream = [key for assets_def in loaded.assets or [] for key in getattr(assets_def, "keys", ())]
    return dg.Definitions.merge(loaded, dg.Definitions(assets=[build_analytics_copy(upstream)]))
