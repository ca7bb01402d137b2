"""The command line: quick start-up, --version and help, forget that asks first, progress lines, `init`."""
import configparser
import io
import subprocess
import sys

import pytest

import loyalty_lab
from loyalty_lab import cli as cli_module
from lab_helpers import CLI, cli, merged_lab

HEAVY = ["ibis", "duckdb", "splink", "sklearn", "lifetimes", "papermill", "matplotlib"]


def imported_after(code: str) -> set[str]:
    "Top-level packages in sys.modules after running `code` in a fresh interpreter."
    probe = code + "; import sys; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    return set(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split())


def test_cli_and_config_import_no_heavy_library():
    assert not set(HEAVY) & imported_after("import loyalty_lab.cli, loyalty_lab.config")
    # the command line itself (argparse, --help, --version) needs not even pandas
    assert not {"pandas", "numpy", "pyarrow", "rich", "yaml"} & imported_after("import loyalty_lab.cli")
    assert "duckdb" in imported_after("from loyalty_lab import Warehouse")  # the names still resolve


def test_lazy_package_resolves_every_public_name():
    code = ("import loyalty_lab as ll; from loyalty_lab import Warehouse, synth; import loyalty_lab.synth; "
            "assert ll.Warehouse is Warehouse and ll.synth is synth and callable(synth); "
            "assert set(ll.__all__) <= set(dir(ll)); print(len(ll.__all__))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(loyalty_lab.__all__) > 80
    with pytest.raises(AttributeError, match="has no attribute 'Warehose'"):
        loyalty_lab.Warehose


def test_version_and_every_command_has_a_description_and_an_example(tmp_path):
    done = cli("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == f"loyalty-lab {loyalty_lab.__version__}\n"
    commands = cli_module._parser()._subparsers._group_actions[0].choices
    assert {"init", "run", "forget", "config", "contract"} <= set(commands)
    for name, parser in commands.items():
        text = parser.format_help()
        example = text.split("example:\n", 1)[1].splitlines()[0]
        assert example.startswith(f"  loyalty-lab {name}"), (name, example)
        assert parser.description.endswith(".") and "\n" not in parser.description, name


def test_progress_without_a_terminal_prints_plain_lines_with_durations():
    out = io.StringIO()
    with cli_module.StepProgress(out) as progress:
        progress("merge: standardising profiles")
        progress("merge: golden records")
        progress.close()
        print("a result line", file=out)
    lines = out.getvalue().splitlines()
    assert [line.rsplit("  ", 1)[0] for line in lines] == [
        "✓ merge: standardising profiles", "✓ merge: golden records", "a result line"]
    assert all(line.endswith(" s") for line in lines[:2]) and "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


# ---- on a merged sample (built once): progress of the real commands, forget ----

@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    root = tmp_path_factory.mktemp("merged")
    settings = merged_lab(root)
    from loyalty_lab.warehouse import Warehouse
    with Warehouse(settings.warehouse.path, read_only=True) as wh:
        sizes = wh.con.con.execute("SELECT customer_id, count(*) n FROM crosswalk GROUP BY 1 HAVING n >= 2 "
                                   "ORDER BY customer_id LIMIT 3").fetchall()
    return root, settings, [cid for cid, _ in sizes]


def table_sizes(settings) -> dict[str, int]:
    from loyalty_lab.warehouse import Warehouse
    with Warehouse(settings.warehouse.path, read_only=True) as wh:
        return {t: wh.con.con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in wh.con.list_tables()}


def test_ingest_and_merge_commands_print_each_step_with_its_duration(merged):
    root, _, _ = merged
    for command, first in (("ingest", "✓ reading profiles ← data/sample/profiles.csv  "),
                           ("merge", "✓ merge: standardising profiles  ")):
        done = cli(command, cwd=root)
        assert done.returncode == 0, done.stderr
        steps = [line for line in done.stdout.splitlines() if line.startswith("✓ ")]
        assert steps[0].startswith(first) and len(steps) >= 3, done.stdout
        assert all(float(s.rsplit("  ", 1)[1].removesuffix(" s")) >= 0 for s in steps)
        assert "\x1b" not in done.stdout


def test_forget_dry_run_changes_nothing_and_counts_what_forget_then_removes(merged):
    from loyalty_lab.view360 import forget
    _, settings, (cid, _, _) = merged
    before = table_sizes(settings)
    preview = forget(cid, settings=settings, dry_run=True)
    assert table_sizes(settings) == before
    assert preview.dry_run and preview["raw_profiles"] == len(preview.records) >= 2 and preview["crosswalk"] >= 2
    assert sum(preview.per_source().values()) == len(preview.records)
    removed = forget(cid, settings=settings)
    after = table_sizes(settings)
    assert dict(removed) == dict(preview) and not removed.dry_run
    assert {t: before[t] - after[t] for t in removed} == dict(removed)
    assert after["customer_id_audit"] == before["customer_id_audit"] + 1


def test_forget_command_refuses_without_a_terminal_and_dry_run_only_shows(merged):
    root, settings, (_, cid, _) = merged
    before = table_sizes(settings)
    refused = subprocess.run([CLI, "forget", cid], cwd=root, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith(f"loyalty-lab: error: forget {cid}: no terminal to ask for confirmation")
    assert "pass --dry-run" in refused.stderr and "--yes" in refused.stderr
    shown = subprocess.run([CLI, "forget", cid, "--dry-run"], cwd=root, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"{cid}: ") and "rows to delete:" in shown.stdout
    assert shown.stdout.strip().endswith("dry run: nothing erased") and table_sizes(settings) == before


class Keyboard(io.StringIO):
    "stdin of a person at a terminal who types `answer`."
    def isatty(self):
        return True


@pytest.mark.parametrize("answer, erased", [("n\n", False), ("", False), ("y\n", True)])
def test_forget_asks_and_erases_only_on_yes(merged, monkeypatch, capsys, answer, erased):
    root, settings, (_, _, cid) = merged
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "stdin", Keyboard(answer))
    before = table_sizes(settings)
    code = cli_module.main(["forget", cid])
    out = capsys.readouterr().out
    assert "rows to delete:" in out and "Erase these? [y/N] " in out
    if erased:
        assert code == 0 and f"forgot {cid}: raw_profiles " in out and table_sizes(settings) != before
    else:
        assert code == 1 and out.strip().endswith("nothing erased") and table_sizes(settings) == before


def test_forget_yes_erases_without_asking(merged):
    root, settings, _ = merged
    from loyalty_lab.warehouse import Warehouse
    with Warehouse(settings.warehouse.path, read_only=True) as wh:
        cid = wh.con.con.execute("SELECT max(customer_id) FROM crosswalk").fetchone()[0]
    done = subprocess.run([CLI, "forget", cid, "--yes"], cwd=root, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Erase these?" not in done.stdout and f"forgot {cid}: raw_profiles " in done.stdout
    again = cli("forget", cid, "--dry-run", cwd=root)
    assert again.returncode == 0 and f"{cid}: already forgotten (" in again.stdout
    missing = cli("forget", "C99999999", "--dry-run", cwd=root)
    assert missing.returncode == 2 and "no customer 'C99999999' in the crosswalk" in missing.stderr


# ---- init ----

def read_ini(path):
    ini = configparser.ConfigParser(inline_comment_prefixes=None, interpolation=None)
    ini.read(path, encoding="utf-8")
    return ini


def test_init_writes_a_lab_with_the_sample_as_sources(tmp_path):
    lab = tmp_path / "mylab"
    done = cli("init", str(lab), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in lab.iterdir()) == ["data", "reports", "segments.yaml", "settings.ini"]
    ini = read_ini(lab / "settings.ini")
    sources = {s: dict(ini[s]) for s in ini.sections() if s.startswith("source.")}
    assert sources == {
        "source.sample_profiles": {"table": "profiles", "path": "data/sample/profiles.csv"},
        "source.sample_orders": {"table": "order_lines", "path": "data/sample/order_lines.csv"},
        "source.sample_interactions": {"table": "interactions", "path": "data/sample/interactions.csv"},
        "source.sample_ledger": {"table": "loyalty_ledger", "path": "data/sample/loyalty_ledger.csv"},
        "source.sample_offers": {"table": "offers", "path": "data/sample/offers.csv"}}
    # the sample init wrote is the checkout's data/sample, byte for byte
    from lab_helpers import SAMPLE
    for source in sources.values():
        assert (lab / source["path"]).read_bytes() == (SAMPLE / source["path"].removeprefix("data/sample/")).read_bytes()
    assert ini["report"]["template"] == "" and ini["report"]["segments_file"] == "segments.yaml"
    assert ini["warehouse"]["path"] == "data/warehouse.duckdb" and ini["run"]["as_of"] == "2024-06-30"
    assert ini["privacy"]["pseudonym_salt"] == ""  # the salt lives beside the warehouse, not in settings.ini
    text = (lab / "settings.ini").read_text(encoding="utf-8")
    assert text.startswith("# loyalty-lab run settings") and "[sources]" not in text
    for example in ("# [source.pos_orders]", "# encoding = cp1250", "# unit_price = Iznos / Kolicina",
                    "# [source.webshop_orders]", "# [source.crm_customers]", "# path = exports/crm/customers.parquet"):
        assert example in text
    assert not [line for line in text.splitlines() if not line.startswith("#") and ";" in line]  # no inline ; comments
    import yaml
    assert len(yaml.safe_load((lab / "segments.yaml").read_text(encoding="utf-8"))["segments"]) == 5
    assert f"cd {lab} && loyalty-lab run" in done.stdout


def test_init_refuses_a_folder_that_has_a_settings_ini(tmp_path):
    (tmp_path / "settings.ini").write_text("[run]\nas_of = 2024-01-01\n")
    done = cli("init", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith(f"loyalty-lab: error: {tmp_path / 'settings.ini'} already exists")
    assert (tmp_path / "settings.ini").read_text() == "[run]\nas_of = 2024-01-01\n"
    assert not (tmp_path / "data").exists()


@pytest.mark.skipif(not cli_module.packaged_template().is_file(), reason="needs the report template inside the package")
def test_init_with_template_copies_it_and_points_the_settings_at_it(tmp_path):
    done = cli("init", str(tmp_path / "lab"), "--with-template", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    copy = tmp_path / "lab" / "segment_report.ipynb"
    assert copy.read_bytes() == cli_module.packaged_template().read_bytes()
    assert read_ini(tmp_path / "lab" / "settings.ini")["report"]["template"] == "segment_report.ipynb"


@pytest.mark.slow
def test_init_then_run_writes_the_report_outside_any_checkout(tmp_path):
    lab = tmp_path / "mylab"
    assert cli("init", str(lab), cwd=tmp_path).returncode == 0
    done = cli("run", "--run-id", "first", cwd=lab)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"report: {lab / 'reports' / 'first' / 'segment_report.html'}")
    assert "order_lines ← data/sample/order_lines.csv: loaded, 41,024 rows loaded, 0 rejected" in done.stdout
