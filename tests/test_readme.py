import re
from pathlib import Path

from devpilot.models import Role
from devpilot.permissions import PERMISSIONS, can

README = Path(__file__).resolve().parent.parent / "README.md"
ROLES = [Role.VIEWER, Role.MEMBER, Role.ADMIN, Role.OWNER]


def test_the_readme_roles_matrix_is_the_enforced_one():
    rows = {}
    for line in README.read_text().splitlines():
        match = re.match(r"\| ([a-z_]+\.[a-z_]+)[^|]*\|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() == "yes" for cell in match.group(2).split("|")]
    assert rows == {name: [can(role, name) for role in ROLES] for name in PERMISSIONS}


def test_the_readme_has_exactly_two_commands_for_a_new_machine():
    section = README.read_text().split("## Two commands")[1].split("##")[0]
    assert re.findall(r"^    (bin/\w+)$", section, re.M) == ["bin/run", "bin/test"]
