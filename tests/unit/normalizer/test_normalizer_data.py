import inspect
import subprocess
import sys
from importlib import resources
from pathlib import Path

import normalizer
from normalizer import nik, text
from normalizer._resources import read_data_text

DATA = resources.files("normalizer").joinpath("data")
REPO_ROOT = Path(__file__).resolve().parents[3]


def test_importing_reads_no_data_file() -> None:
    probe = (
        "import normalizer\n"
        "from normalizer import nik, text\n"
        "loaders = [nik._regions, text._lexicon, text._supplement, text._stopwords,\n"
        "           text._domain_stopwords, text._word_rank, text._known_words]\n"
        "print(sum(f.cache_info().currsize for f in loaders))\n"
        "nik.parse_nik('3201014101900001')\n"
        "print(nik._regions.cache_info().currsize)\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", probe],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["0", "1"]


def test_public_api_is_exported() -> None:
    assert sorted(normalizer.__all__) == normalizer.__all__
    # Exactly what the package imports from its modules is exported: nothing left out, and no
    # name in __all__ that the package does not define.
    public = {
        name for name, value in vars(normalizer).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(normalizer.__all__)
    assert normalizer.parse_nik is nik.parse_nik
    assert normalizer.similarity is text.similarity


def test_region_list_matches_the_2025_decree() -> None:
    regions = nik._regions()
    current = {code for code, row in regions.items() if not row.legacy}
    # Kepmendagri 300.2.2-2138/2025: 38 provinces, 514 regencies/cities, 7,285 districts.
    assert sum(len(c) == 2 for c in current) == 38
    assert sum(len(c) == 4 for c in current) == 514
    assert sum(len(c) == 6 for c in current) == 7285
    for code in current:
        assert code.isdigit() and len(code) in (2, 4, 6)
        assert code[:2] in current and (len(code) < 6 or code[:4] in current)


def test_legacy_codes_are_old_papua_and_point_to_current_codes() -> None:
    regions = nik._regions()
    legacy = {code: row for code, row in regions.items() if row.legacy}
    assert len(legacy) == 614
    assert {code[:2] for code in legacy} == {"91", "92"}
    for code, row in legacy.items():
        assert row.successor is not None, code
        assert len(row.successor) == len(code)
        assert row.successor[:2] in {"91", "92", "93", "94", "95", "96"}
        successor = regions[row.successor]
        assert not successor.legacy and successor.name == row.name


def test_every_shipped_data_file_is_documented() -> None:
    sources = read_data_text("SOURCES.md")
    shipped = {
        entry.name
        for entry in DATA.iterdir()
        if entry.is_file() and not entry.name.endswith((".py", ".md"))
    }
    assert shipped == {
        "regions.csv.gz",
        "slang_lexicon.tsv.gz",
        "stopwords.txt",
        "common_words.txt.gz",
        "slang_supplement.tsv",
        "stopwords_supplement.txt",
    }
    for name in shipped:
        assert f"`{name}`" in sources
    for package in (
        "idn-area-data",
        "4.0.1",
        "nomiden",
        "0.0.7",
        "indoNLP",
        "0.3.4",
        "@zxcvbn-ts/language-id",
        "4.1.1",
        "300.2.2-2138",
        "ODbL",
    ):
        assert package in sources


def test_project_owned_files_say_so() -> None:
    for name in ("slang_supplement.tsv", "stopwords_supplement.txt"):
        assert "OURS" in read_data_text(name).splitlines()[0]


def test_slang_tables_are_well_formed() -> None:
    lexicon, supplement = text._lexicon(), text._supplement()
    assert len(lexicon) > 4000
    assert lexicon["yg"] == "yang" and lexicon["tdk"] == "tidak"
    for table in (lexicon, supplement):
        for key, value in table.items():
            assert key == key.lower() and key.isalnum(), key
            assert value and value == value.strip(), key
    # The supplement overrides the lexicon where they disagree.
    assert lexicon["gak"] == "enggak" and supplement["gak"] == "tidak"
