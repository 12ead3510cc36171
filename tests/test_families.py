"""The model-family registry: one place per family, no kind comparisons elsewhere, layers without cycles."""
from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from img2img import families
from img2img.config import DATA_SOURCES, ConfigError
from img2img.families.base import Family

PACKAGE = Path(__file__).resolve().parents[1] / "img2img"


def _sources(exclude: str | None = None):
    for path in sorted(PACKAGE.rglob("*.py")):
        if exclude and path.is_relative_to(PACKAGE / exclude):
            continue
        yield path, ast.parse(path.read_text(), str(path))


def _is_kind(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "kind") or (isinstance(node, ast.Name) and node.id == "kind")


def test_no_module_outside_the_families_compares_a_kind_to_a_name():
    names = set(families.names())
    found = []
    for path, tree in _sources(exclude="families"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                literals = {o.value for o in operands if isinstance(o, ast.Constant)}
                tuples = {e.value for o in operands if isinstance(o, (ast.Tuple, ast.List, ast.Set))
                          for e in o.elts if isinstance(e, ast.Constant)}
                if any(_is_kind(o) for o in operands) or (literals | tuples) & names:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
            elif isinstance(node, ast.Dict):          # a table keyed by family names is a comparison too
                if {k.value for k in node.keys if isinstance(k, ast.Constant)} & names:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
            elif isinstance(node, ast.Match):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} (match)")
    assert not found, f"kind comparisons outside img2img/families: {found}"


def test_the_scan_would_see_a_comparison(tmp_path):
    """The check above is not vacuous: it flags the forms it looks for."""
    for code in ('if cfg.model.kind == "pix2pix": pass', 'x = kind != "mlp"', 'y = k in ("dcgan", "other")',
                 'T = {"dcgan": 1}'):
        tree = ast.parse(code)
        hits = [n for n in ast.walk(tree) if isinstance(n, (ast.Compare, ast.Dict))]
        assert hits
        node = hits[0]
        if isinstance(node, ast.Compare):
            ops = [node.left, *node.comparators]
            consts = {o.value for o in ops if isinstance(o, ast.Constant)} | {
                e.value for o in ops if isinstance(o, ast.Tuple) for e in o.elts}
            assert any(_is_kind(o) for o in ops) or consts & set(families.names())
        else:
            assert {k.value for k in node.keys} & set(families.names())


def test_registry_lists_families_and_refuses_unknown_kinds():
    assert families.names()[:3] == ("pix2pix", "dcgan", "mlp")
    for kind in families.names():
        fam = families.get(kind)
        assert issubclass(fam, Family) and fam.name == kind
        assert fam.data in DATA_SOURCES and fam.loss_names
    assert families.for_data("pairs").name == "pix2pix"
    assert families.for_data("images").name == "dcgan"
    assert families.for_data("unpaired").name == "cyclegan"
    for bad in ("cyclegan2", "", 5, None):
        with pytest.raises(ConfigError, match="unknown model kind"):
            families.get(bad)


def test_make_config_takes_each_familys_own_defaults():
    assert families.make_config(pairs="x").model.kind == "pix2pix"
    dc = families.make_config(images="x")
    assert dc.model.kind == "dcgan" and dc.train.batch_size == families.get("dcgan").defaults["batch_size"]
    mlp = families.make_config(images="x", kind="mlp")
    assert (mlp.family.noise, mlp.model.image_size) == ("uniform", 28)
    assert families.make_config(images="x", kind="mlp", noise="normal").family.noise == "normal"   # given wins
    p = families.make_config(pairs="x", crop_size=128)
    assert (p.model.image_size, p.model.depth) == (128, 7)


def test_resume_keeps_a_stored_depth():
    """With a base config (resume), derived settings are not re-derived: an explicit --depth survives."""
    base = families.make_config(pairs="x", crop_size=256, depth=5)
    again = families.make_config(base, epochs=3)
    assert (again.model.depth, again.train.epochs) == (5, 3)


@pytest.mark.parametrize("kind", ["pix2pix", "dcgan", "mlp"])
def test_every_family_trains_one_step_through_the_generic_interface(kind, tmp_path):
    """build -> dataset -> generate -> d_terms / g_terms -> display, without the trainer knowing the family."""
    from conftest import write_ab
    from PIL import Image
    if kind == "pix2pix":
        cfg = families.make_config(pairs=str(write_ab(tmp_path / "p", n=2)), load_size=36, crop_size=32, ngf=4, ndf=4)
    else:
        img = tmp_path / "imgs"
        img.mkdir()
        for i in range(4):
            Image.new("RGB", (40, 40), (60 * i, 20, 200)).save(img / f"{i}.png")
        cfg = families.make_config(images=str(img), kind=kind, ngf=4, ndf=4, image_size=32,
                                   **({"mlp_hidden": 8} if kind == "mlp" else {}))
    families.check(cfg)
    fam = families.get(kind)
    model = fam(cfg)
    ds = fam.dataset(cfg)
    from img2img.data.paired import collate
    batch = {k: v for k, v in collate([ds[0], ds[1]]).items() if k != "errors"}
    fakes = model.generate(batch)
    (name, D, real_in, fake_in), = model.d_terms(batch, fakes)
    assert D(real_in).shape == D(fake_in).shape
    adversarial, extra = model.g_terms(batch, fakes)
    loss = sum(D(x).mean() for _, D, x, *_real in adversarial) + sum(extra.values())
    loss.backward()
    assert all(p.grad is not None for p in model.G.parameters())
    cols = model.display(model.preview_batch(ds), model.generate(model.preview_batch(ds)))
    assert all(c.shape[1] == 3 and 0 <= c.min() and c.max() <= 1 for c in cols)


def test_no_import_cycles_and_layers_point_one_way():
    """Import every module on its own in a fresh interpreter (a cycle held together by late imports
    fails there), and check that leaves import no higher layer."""
    modules = sorted(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
                     for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    for m in modules:
        r = subprocess.run([sys.executable, "-c", code, m], capture_output=True, text=True,
                           cwd=PACKAGE.parent, timeout=120)
        assert r.returncode == 0, f"{m}: {r.stderr.strip().splitlines()[-1:]}"
    # module-level imports: what each lower layer may import (leaves <- config <- nets, data <- families <- ...)
    allowed = {"files": set(), "color": set(), "config": {"files"}, "device": {"config"}, "checkpoint": {"files"},
               "nets": {"nets", "files"}, "data": {"data", "files", "color", "config", "device"},
               "families": {"families", "config", "nets", "data", "color", "files", "checkpoint"}}
    for path, tree in _sources():
        layer = path.relative_to(PACKAGE).with_suffix("").parts[0]
        if layer in allowed:
            bad = {m for m in _module_imports(path, tree) if m.split(".")[1] not in allowed[layer]}
            assert not bad, f"{path.relative_to(PACKAGE)} (layer {layer}) imports {sorted(bad)}"


@functools.cache
def _all_modules() -> frozenset[str]:
    return frozenset(_module_name(p) for p in PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    return ".".join(["img2img", *path.relative_to(PACKAGE).with_suffix("").parts]).removesuffix(".__init__")


def test_no_import_circle_even_through_imports_inside_functions():
    """The module graph, counting every import (also those inside functions, which the fresh-
    interpreter check above cannot see), has no circle: each module can be read bottom-up."""
    graph = {}
    for path, tree in _sources():
        if path.name == "__main__.py":
            continue
        graph[_module_name(path)] = _module_imports(path, tree, everywhere=True)
    known = set(graph)

    def resolve(name: str) -> str:                      # img2img.x.Name -> the module img2img.x
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        return name
    graph = {m: {resolve(t) for t in targets} - {m} for m, targets in graph.items()}
    state: dict[str, int] = {}
    path_: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path_.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                circle = path_[path_.index(t):] + [t]
                pytest.fail("import circle: " + " -> ".join(circle))
            if t not in state:
                visit(t)
        path_.pop()
        state[m] = 2
    for m in sorted(graph):
        if m not in state:
            visit(m)


def _module_imports(path: Path, tree: ast.Module, everywhere: bool = False) -> set[str]:
    """The img2img modules (as 'img2img.x', 'img2img.x.y') that ``path`` imports at module level
    (or anywhere in it, with ``everywhere``: inside functions too).  ``from . import x`` gives
    'img2img.x'; ``from .m import Name`` gives 'img2img.m', or with ``everywhere`` 'img2img.m.Name'
    where that is a module (``from .data import holdout``)."""
    parts = ["img2img", *path.relative_to(PACKAGE).with_suffix("").parts]
    package = parts[:-1]
    out = set()
    for node in (ast.walk(tree) if everywhere else tree.body):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
            else:
                target = (node.module or "").split(".")
            if target[0] != "img2img":
                continue
            if len(target) == 1:                     # from . import x: x is a module of the package
                out |= {f"img2img.{a.name}" for a in node.names if a.name != "__version__"}
            else:
                t = ".".join(target)
                if everywhere:                       # from .data import holdout: the module holdout
                    subs = {f"{t}.{a.name}" for a in node.names}
                    out |= subs & _all_modules()
                    if subs - _all_modules():
                        out.add(t)
                else:
                    out.add(t)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("img2img.")}
    return out


def test_no_private_names_imported_across_modules():
    found = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] != "__future__":
                found += [f"{path.relative_to(PACKAGE)}: {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, found


def test_cpu_matmul_setting_swaps_the_small_map_kernels_in_and_out():
    from img2img.nets import smallconv
    on = families.get("pix2pix").build_generator(families.make_config(pairs="x", crop_size=32, ngf=4))
    off = families.get("pix2pix").build_generator(families.make_config(pairs="x", crop_size=32, ngf=4,
                                                                         cpu_matmul=False))
    assert any(isinstance(m, smallconv.Conv2d) for m in on.modules())
    assert not any(isinstance(m, (smallconv.Conv2d, smallconv.ConvTranspose2d)) for m in off.modules())
    assert on.state_dict().keys() == off.state_dict().keys()
    off.load_state_dict(on.state_dict())
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(on.eval()(x), off.eval()(x), rtol=1e-4, atol=1e-5)


def test_a_checkpoint_from_before_the_families_resumes_and_translates(tmp_path):
    """Checkpoints written before this layout hold no "family" state; they load as they are."""
    from conftest import write_ab

    from img2img import Translator, train
    from img2img.checkpoint import load_checkpoint, save_checkpoint
    pairs = write_ab(tmp_path / "p", n=2)
    run = train(pairs=str(pairs), out=str(tmp_path / "run"), load_size=36, crop_size=32, ngf=4, ndf=4,
                max_steps=2, progress=False)
    ckpt = load_checkpoint(run / "latest.pt")
    assert "family" in ckpt["state"]
    del ckpt["state"]["family"]
    save_checkpoint(run / "latest.pt", ckpt["config"], ckpt["state"])
    (run / "model.pt").unlink()
    assert train(out=str(run), resume=True, max_steps=3, progress=False) == run
    assert load_checkpoint(run / "latest.pt")["state"]["step"] == 3
    out = Translator.load(run, device="cpu")(torch.rand(3, 40, 24))
    assert out.shape == (3, 40, 24)


# every family setting as the layout before per-family settings stored it: all of them, in every config
OLD_LAYOUT_EXTRAS = {"model": {"z_dim": 100, "noise": "normal", "mlp_hidden": 128, "mlp_out": "tanh",
                               "d_spectral_norm": False},
                     "train": {"lambda_l1": 100.0, "lambda_cycle": 10.0, "lambda_identity": 0.5, "pool_size": 50}}


def test_each_family_owns_its_settings_and_the_others_refuse_them():
    p2p = families.make_config(pairs="x", lambda_l1=7.0)
    assert p2p.family.lambda_l1 == 7.0 and not hasattr(p2p.family, "pool_size")
    assert not hasattr(p2p.train, "lambda_l1") and not hasattr(p2p.model, "z_dim")
    assert families.make_config(unpaired="x", pool_size=3).family.pool_size == 3
    assert families.make_config(images="x", kind="mlp", z_dim=7).family.z_dim == 7     # dcgan and mlp share it
    with pytest.raises(ConfigError, match="--pool-size is a setting of cyclegan, not of pix2pix"):
        families.make_config(pairs="x", pool_size=3)
    with pytest.raises(ConfigError, match="--z-dim is a setting of dcgan and mlp, not of cyclegan"):
        families.make_config(unpaired="x", z_dim=3)
    with pytest.raises(ConfigError, match="unknown setting 'no_such'"):
        families.make_config(pairs="x", no_such=3)
    with pytest.raises(ConfigError, match="lambda-l1 must be"):      # the family's own range checks
        families.check(families.make_config(pairs="x", lambda_l1=-1.0), data=False)
    with pytest.raises(ConfigError, match="pool-size must be"):
        families.check(families.make_config(unpaired="x", pool_size=10 ** 6), data=False)


def test_family_settings_are_stored_in_the_sections_they_always_were(tmp_path):
    """config.json and checkpoints keep one layout: a family's settings sit in the model or train
    section, as before; a config of the old layout (every family's settings in every file) loads with
    its own family's values and drops the others'."""
    d = families.make_config(unpaired="x", lambda_cycle=3.0).to_dict()
    assert set(d) == {"model", "data", "train"} and d["train"]["lambda_cycle"] == 3.0
    assert "lambda_l1" not in d["train"] and "z_dim" not in d["model"]
    assert families.make_config(images="x", z_dim=9).to_dict()["model"]["z_dim"] == 9
    for kind, source in (("pix2pix", "pairs"), ("cyclegan", "unpaired"), ("dcgan", "images"), ("mlp", "images")):
        new = families.make_config(**{source: "x"}, kind=kind)
        old = new.to_dict()
        for section, extras in OLD_LAYOUT_EXTRAS.items():
            old[section] = {**extras, **old[section]}
        back = families.config_from_dict(old)
        assert back == new and back.to_dict() == new.to_dict(), kind


def test_a_checkpoint_of_the_old_config_layout_translates_exports_and_resumes(tmp_path):
    """Before per-family settings, every config held every family's settings (pix2pix's z_dim...)."""
    from conftest import write_ab

    from img2img import Translator, export_onnx, train
    from img2img.checkpoint import load_checkpoint, save_checkpoint
    pairs = write_ab(tmp_path / "p", n=2)
    run = train(pairs=str(pairs), out=str(tmp_path / "run"), load_size=36, crop_size=32, ngf=4, ndf=4,
                max_steps=2, progress=False, lambda_l1=50.0)
    for name in ("latest.pt", "model.pt"):
        ckpt = load_checkpoint(run / name)
        for section, extras in OLD_LAYOUT_EXTRAS.items():
            ckpt["config"][section] = {**extras, **ckpt["config"][section]}
        ckpt["config"]["train"]["lambda_l1"] = 50.0
        save_checkpoint(run / name, ckpt["config"], ckpt["state"])
    (run / "config.json").unlink()
    out = Translator.load(run / "model.pt", device="cpu")(torch.rand(3, 32, 32))
    assert out.shape == (3, 32, 32)
    export_onnx(run / "model.pt", tmp_path / "g.onnx")
    assert train(out=str(run), resume=True, max_steps=3, progress=False) == run
    stored = load_checkpoint(run / "latest.pt")
    assert stored["state"]["step"] == 3 and stored["config"]["train"]["lambda_l1"] == 50.0
    assert "z_dim" not in stored["config"]["model"]


def test_api_functions_survive_importing_their_modules():
    """`import img2img.<module>` sets an attribute on the package; no module may shadow an API function."""
    import importlib

    import img2img
    for name, module in img2img._API.items():
        importlib.import_module(f"img2img.{module}")
        assert not isinstance(getattr(img2img, name), type(img2img)), f"img2img.{name} is a module"
