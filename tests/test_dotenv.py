import io
import subprocess

from devpilot.dotenv import parse, render


def test_parses_like_python_dotenv():
    text = (
        "# a comment\n"
        "export EXPORTED=yes\n"
        "PLAIN=value # trailing comment\n"
        "SINGLE='single $NOT_INTERPOLATED'\n"
        'DOUBLE="with \\"escapes\\" and\\nnewline"\n'
        'MULTI="line one\n'
        'line two"\n'
        "EMPTY=\n"
        "SPACED = spaced value \n"
    )
    parsed = parse(text)
    assert parsed.ok, parsed.problems
    assert parsed.entries == {
        "EXPORTED": "yes",
        "PLAIN": "value",
        "SINGLE": "single $NOT_INTERPOLATED",
        "DOUBLE": 'with "escapes" and\nnewline',
        "MULTI": "line one\nline two",
        "EMPTY": "",
        "SPACED": "spaced value",
    }


def test_every_bad_line_is_listed_with_its_number():
    parsed = parse("GOOD=1\n1BAD=2\nnot a binding\nGOOD=3\nNOVALUE\nDASH-KEY=4\n")
    assert parsed.entries == {"GOOD": "1"}
    assert [line for line, _ in parsed.problems] == [2, 3, 4, 5, 6]
    assert "duplicate of line 1" in parsed.problems[2][1]


def test_unterminated_quotes_are_an_error():
    assert not parse('A="never closed\nB=2\n').ok


def test_render_round_trips_awkward_values():
    values = {"A": "plain", "B": "two\nlines", "C": 'q"uo\\te', "D": "", "E": "# not a comment", "F": "it's"}
    assert parse(render(values)).entries == values


# Values a team really stores: paths with $, JSON, PEM keys, quotes of every kind.
READABLE_BY_ALL = {
    "PLAIN": "plain", "PATHLIKE": "/root$PATH", "DOLLARS": "pa$$word$", "JSON": '{"a": [1, "two"]}',
    "PEM": "-----BEGIN KEY-----\nMIIB\\nx+/=\n-----END KEY-----", "APOSTROPHE": "it's", "EMPTY": "",
    "HASH": "# not a comment", "BACKSLASH": "C:\\temp\\new", "BACKTICK": "`uname`", "SPACES": "  padded  ",
    "QUOTES": 'say "hi"', "TAB": "a\tb", "UNICODE": "café ☕",
}


def _read_with_python_dotenv(text):
    from dotenv import dotenv_values

    return dict(dotenv_values(stream=io.StringIO(text), interpolate=True))


def _read_with_bash(text, keys, tmp_path):
    env_file = tmp_path / "download.env"
    env_file.write_text(text)
    printed = subprocess.run(
        ["bash", "-c", 'set -a; source "$1"; for k in "${@:2}"; do printf "%s\\0" "${!k}"; done', "_", str(env_file),
         *keys], capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin", "HOME": "/root"})
    return dict(zip(keys, printed.stdout.split("\0")[:-1], strict=True))


def test_the_download_reads_back_exactly_in_python_dotenv_and_bash(tmp_path):
    text = render(READABLE_BY_ALL)
    assert not any(line.startswith("# ") for line in text.splitlines())  # nothing flagged
    assert _read_with_python_dotenv(text) == READABLE_BY_ALL
    assert _read_with_bash(text, list(READABLE_BY_ALL), tmp_path) == READABLE_BY_ALL
    assert parse(text).entries == READABLE_BY_ALL


def test_a_value_no_quoting_can_carry_is_flagged_not_silently_changed():
    text = render({"BRACES": "x${HOME}y", "MIXED": "it's $5"})
    assert "# BRACES: no quoting reads this value back the same" in text
    assert "# MIXED: no quoting reads this value back the same" in text
    assert parse(text).entries == {"BRACES": "x${HOME}y", "MIXED": "it's $5"}
