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
