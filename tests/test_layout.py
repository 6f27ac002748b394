"""The package layout: one `vigil` namespace, imports that run one way down the layers, a wheel
whose top-level names are exactly that namespace and that works beside folders named like ours."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Each source folder, the dotted name it is installed as, and its layer (higher may import lower).
LAYERS = {"vigil/cli": ("vigil.cli", 4), "benchmarks": ("vigil.benchmarks", 3),
          "export": ("vigil.export", 2), "training": ("vigil.training", 1),
          "runtime": ("vigil.runtime", 0)}
RANK = {name: rank for name, rank in LAYERS.values()}
# Inside the runtime: the shared core imports neither side; the two sides do not import each other.
RUNTIME_ROOMS = {"vigil.runtime.core": {"vigil.runtime.core"},
                 "vigil.runtime.sensor": {"vigil.runtime.core", "vigil.runtime.sensor"},
                 "vigil.runtime.camera": {"vigil.runtime.core", "vigil.runtime.camera"}}
# What a device installs, plus the optional extras imported only inside the functions that need
# them (matplotlib for --report, paho for --mqtt; a missing one is a MissingDependency error
# naming the install), and the stdlib.
RUNTIME_THIRD_PARTY = {"numpy", "onnxruntime", "cv2", "matplotlib", "paho"}
OLD_TOP_LEVEL = {"runtime", "training", "export", "benchmarks"}


def modules() -> list[tuple[str, Path]]:
    """(dotted name, file) of every module of the package, from the source folders."""
    found = [("vigil", ROOT / "vigil" / "__init__.py"), ("vigil.__main__", ROOT / "vigil" / "__main__.py")]
    for folder, (package, _) in LAYERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found.append((".".join([package, *parts]), path))
    return found


def imported_names(name: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a module, relative ones resolved."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.append((node.lineno, target))
            # `from vigil.runtime.core import metrics` imports a submodule too.
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def layer_of(name: str) -> str | None:
    for package in sorted(RANK, key=len, reverse=True):
        if name == package or name.startswith(package + "."):
            return package
    return None


def test_every_source_module_is_found():
    names = {name for name, _ in modules()}
    assert {"vigil.cli.commands", "vigil.runtime.core.artifact", "vigil.runtime.sensor.windows",
            "vigil.runtime.camera.sources", "vigil.export.package", "vigil.training.train_sensor",
            "vigil.benchmarks.bench"} <= names
    assert len(names) > 60


def test_imports_run_one_way_down_the_layers():
    back_arrows = []
    for name, path in modules():
        layer = layer_of(name)
        for line, target in imported_names(name, path):
            where = f"{path.relative_to(ROOT)}:{line} imports {target}"
            if target.split(".")[0] in OLD_TOP_LEVEL:
                back_arrows.append(f"{where} (an old top-level name; use vigil.{target})")
                continue
            target_layer = layer_of(target)
            if layer is None or target_layer is None:
                continue
            if RANK[target_layer] > RANK[layer]:
                back_arrows.append(f"{where} ({layer} must not import the higher {target_layer})")
    assert back_arrows == []


def test_runtime_rooms_and_dependencies():
    wrong = []
    for name, path in modules():
        if layer_of(name) != "vigil.runtime":
            continue
        room = next((r for r in RUNTIME_ROOMS if name == r or name.startswith(r + ".")), None)
        for line, target in imported_names(name, path):
            where = f"{path.relative_to(ROOT)}:{line} imports {target}"
            top = target.split(".")[0]
            if top == "vigil":
                if layer_of(target) not in (None, "vigil.runtime") or target in ("vigil", "vigil.cli"):
                    wrong.append(f"{where}: the runtime imports nothing else of ours")
                target_room = next((r for r in RUNTIME_ROOMS if target == r or target.startswith(r + ".")), None)
                if room and target_room and target_room not in RUNTIME_ROOMS[room]:
                    wrong.append(f"{where}: {room} may import only {sorted(RUNTIME_ROOMS[room])}")
            elif top not in sys.stdlib_module_names and top not in RUNTIME_THIRD_PARTY | {"__future__"}:
                wrong.append(f"{where}: a device installs only {sorted(RUNTIME_THIRD_PARTY)}")
    assert wrong == []


def test_the_import_walk_sees_a_back_arrow(tmp_path):
    """Guard against a vacuous pass: the walk resolves relative imports and flags a real back-arrow."""
    path = tmp_path / "windows.py"
    path.write_text("from ...export import package\nfrom ..core.spec import ImageSpec\n")
    found = imported_names("vigil.runtime.sensor.windows", path)
    assert (1, "vigil.export") in found and (1, "vigil.export.package") in found
    assert (2, "vigil.runtime.core.spec") in found
    assert RANK[layer_of("vigil.export.package")] > RANK[layer_of("vigil.runtime.sensor.windows")]


def test_packages_listed_in_pyproject_cover_every_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    folders = {name for name, path in modules() if path.name == "__init__.py"}
    assert folders == listed, "pyproject.toml's [tool.setuptools] packages must list every package folder"


def test_one_version_from_one_place():
    import vigil

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "vigil.__version__"}
    version_lines = [path for _, path in modules() if "__version__ =" in path.read_text()]
    assert version_lines == [ROOT / "vigil" / "__init__.py"]
    done = subprocess.run([sys.executable, "-m", "vigil", "--version"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"vigil {vigil.__version__}"


def test_the_install_is_imported_beside_a_folder_named_vigil(tmp_path):
    """The README's editable install (strict mode) is what a script in the folder holding the
    checkout imports, when that checkout's folder is named ``vigil/`` (it has no __init__.py:
    the default editable mode let it shadow the install as an empty namespace package)."""
    (tmp_path / "vigil" / "runtime").mkdir(parents=True)  # a clone named vigil, seen from above
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", "import vigil; print(vigil.__version__); "
                           "print(callable(vigil.load))"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == [vigil_version(), "True"], (
        "import vigil beside a folder named vigil/ failed: install as the README says "
        "(pip install -e \".[train,dev]\" --config-settings editable_mode=strict); "
        + done.stderr[-2000:])
    done = subprocess.run([sys.executable, "-m", "vigil", "--version"], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, f"vigil {vigil_version()}"), done.stderr


def vigil_version() -> str:
    import vigil

    return vigil.__version__


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the source folders (the checkout itself stays clean)."""
    pytest.importorskip("setuptools")
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("vigil", *[f for f in LAYERS if "/" not in f]):
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--no-index", "--quiet", "-w", str(out), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = out.glob("vigil_edge-*.whl")
    return path


def test_the_wheel_holds_every_module_under_vigil_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"vigil", next(t for t in top if t.endswith(".dist-info"))}
    expected = {"/".join(name.split(".")) + ("/__init__.py" if path.name == "__init__.py" else ".py")
                for name, path in modules()}
    assert expected <= set(names)
    assert "vigil/py.typed" in names


def test_installed_wheel_works_beside_folders_named_like_ours(wheel, tmp_path,
                                                              tiny_image_artifact):
    """A clean venv gets the wheel; a user's own runtime/, export/ and training/ do not shadow it."""
    import cv2
    import numpy as np
    import vigil

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # The dependencies (numpy, onnxruntime, OpenCV) come from this environment, not vigil itself:
    # its editable install works through a .pth hook that is not run for a path added this way.
    (site / "deps.pth").write_text(str(Path(np.__file__).parents[1]) + "\n")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "--no-deps", "--no-index", "--quiet", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    record = next(site.glob("vigil_edge-*.dist-info")) / "RECORD"
    top = {line.split(",")[0].split("/")[0] for line in record.read_text().splitlines()}
    in_site = {t for t in top if not t.startswith("..")}
    assert in_site == {"vigil", record.parent.name}, f"top-level names in site-packages: {in_site}"

    user = tmp_path / "user-project"
    for name in ("runtime", "export", "training", "benchmarks"):
        (user / name).mkdir(parents=True)
        (user / name / "__init__.py").write_text("raise RuntimeError('the user\\'s own package')\n")
    frames = user / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.png"), np.full((32, 32), 100 + 50 * i, np.uint8))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run(*args):
        return subprocess.run([*map(str, args)], capture_output=True, text=True, cwd=user, env=env,
                              timeout=120)

    done = run(python, "-c", "import vigil, vigil.runtime; print(vigil.__version__); "
                             "print(vigil.runtime.__file__); print(vigil.load)")
    assert done.returncode == 0, done.stderr[-3000:]
    version, runtime_file, _ = done.stdout.splitlines()
    assert version == vigil.__version__
    assert Path(runtime_file).is_relative_to(site)
    done = run(python, "-m", "vigil", "--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"vigil {vigil.__version__}"), done.stderr
    out = user / "scores.jsonl"
    done = run(venv / "bin" / "vigil", "score", tiny_image_artifact, frames, "--jsonl", out)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 1, 2]
    assert all({"score", "anomaly"} <= set(line) for line in lines)
    # run inside this checkout, whose vigil/ is imported instead of the installed one: its layers
    # are found beside it, as the wheel maps them
    inside = subprocess.run([str(python), "-c", "import vigil, vigil.runtime; "
                             "print(vigil.runtime.__file__); print(vigil.load)"],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert inside.returncode == 0, inside.stderr[-3000:]
    assert Path(inside.stdout.splitlines()[0]) == ROOT / "runtime" / "__init__.py"
    done = subprocess.run([str(python), "-m", "vigil", "--version"], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, f"vigil {vigil.__version__}"), done.stderr


def test_the_guides_links_and_section_references_resolve():
    """The README links every guide in docs/, each link names a file that exists, and each
    `docs/NAME.md, "Section"` reference names text that file holds (the guides were split out of
    the README: a section renamed or moved must take its references with it)."""
    import re

    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    texts = {path: path.read_text(encoding="utf-8") for path in files}
    flat = {path: " ".join(text.split()) for path, text in texts.items()}
    readme = texts[ROOT / "README.md"]
    unlinked = [path.name for path in files[1:] if f"](docs/{path.name})" not in readme]
    assert not unlinked, f"guides the README does not link: {unlinked}"
    broken, unknown = [], []
    for path, text in texts.items():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" not in target and not (path.parent / target).exists():
                broken.append(f"{path.name} -> {target}")
        for name, section in re.findall(r"docs/(\w+)\.md,\s+\"([^\"]+)\"", text):
            doc = ROOT / "docs" / f"{name}.md"
            wanted = " ".join(section.split())
            if doc in flat and name not in ("quality", "examples"):
                # a guide's sections are its headings (a bold paragraph title: "Which model")
                headings = [line.lstrip("#").strip() for line in texts[doc].splitlines()
                            if line.startswith("#")]
                found = (any(h.lower().startswith(wanted.lower()) for h in headings)
                         or f"**{wanted}" in flat[doc])
            else:  # the measurements' file names its parts in running text too ("the seventh part")
                found = doc in flat and re.search(r"(?<![\"“])" + re.escape(wanted), flat[doc],
                                                  re.IGNORECASE) is not None
            if not found:
                unknown.append(f"{path.name}: docs/{name}.md, \"{wanted}\"")
    assert not broken, f"links to files that do not exist: {broken}"
    assert not unknown, f"references to sections their file does not hold: {unknown}"
