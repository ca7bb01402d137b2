"""The installed package: what another team gets from `pip install`."""
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import loyalty_lab
REPO = Path(__file__).resolve().parents[1]


def test_tests_use_the_installed_package_not_the_source_tree():
    assert "site-packages" in Path(loyalty_lab.__file__).parts, loyalty_lab.__file__


def test_version_is_the_distribution_version():
    assert loyalty_lab.__version__ == importlib.metadata.version("loyalty-lab")
    assert tuple(int(p) for p in loyalty_lab.__version__.split(".")[:2]) >= (0, 1)


def test_public_api_is_documented_and_importable():
    expected = {"LoyaltyLabError", "CONTRACT", "describe_contract", "Settings", "load_settings",
                "LoadReport", "Warehouse", "ingest_sources", "data_coverage", "monthly_sales", "run_report"}
    assert expected <= set(loyalty_lab.__all__)
    for name in expected:
        obj = getattr(loyalty_lab, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), f"{name} has no docstring"


def test_wheel_imports_in_another_project(tmp_path):
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "-w", str(wheels), str(REPO)], check=True)
    wheel = next(wheels.glob("loyalty_lab-*.whl"))
    subprocess.run(pip + ["install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    code = ("import loyalty_lab, pathlib; print(loyalty_lab.__version__); "
            "print(pathlib.Path(loyalty_lab.__file__).parent); "
            "print(loyalty_lab.describe_contract('offers').column.tolist()[:2])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(site)},
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == loyalty_lab.__version__
    assert Path(out[1]).parent == site
    assert out[2] == "['campaign_id', 'source_system']"
    assert (site / "loyalty_lab" / "warehouse.py").is_file()
    entry_points = next(site.glob("loyalty_lab-*.dist-info")) / "entry_points.txt"
    assert "loyalty-lab = loyalty_lab.cli:main" in entry_points.read_text()
