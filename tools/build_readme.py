"""Build each addon's README.rst from its readme/*.md fragments (OCA layout).

Usage: python tools/build_readme.py [--check] [ADDON_DIR ...]
With --check, exit 1 when a README.rst is not up to date (used by lint).
The fragments use a small Markdown subset: paragraphs, "- " bullet lists,
**bold**, *italic* and `code`.
"""

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = [
    ("CONFIGURE.md", "Configuration"),
    ("USAGE.md", "Usage"),
    ("HANDOFF.md", "Hand-off to the accounting program / production"),
    ("DEPLOYMENT.md", "Deployment"),
    ("ROADMAP.md", "Known issues / Roadmap"),
]


def md_to_rst(text):
    text = re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)
    lines = []
    for line in text.strip().splitlines():
        bullet = re.match(r"^(\s*)- (.*)$", line)
        lines.append(f"{bullet.group(1)}* {bullet.group(2)}" if bullet else line)
    return "\n".join(lines) + "\n"


def title(text, char, overline=False):
    bar = char * len(text)
    return f"{bar}\n{text}\n{bar}\n" if overline else f"{text}\n{bar}\n"


def build(addon):
    manifest = ast.literal_eval((addon / "__manifest__.py").read_text())
    readme = addon / "readme"
    parts = [title(manifest["name"], "=", overline=True)]
    parts += [
        f"|license| {manifest['version']}",
        "",
        (
            ".. |license| image:: https://img.shields.io/badge/licence-"
            f"{manifest['license'].replace('-', '--')}-blue.png"
        ),
        f"    :alt: License: {manifest['license']}",
        "",
        md_to_rst((readme / "DESCRIPTION.md").read_text()),
        "**Table of contents**",
        "",
        ".. contents::",
        "   :local:",
        "",
    ]
    for filename, heading in SECTIONS:
        fragment = readme / filename
        if fragment.exists():
            parts += [title(heading, "="), md_to_rst(fragment.read_text())]
    parts += [title("Credits", "="), title("Authors", "-")]
    parts += [f"* {author.strip()}" for author in manifest["author"].split(",")]
    parts.append("")
    contributors = readme / "CONTRIBUTORS.md"
    if contributors.exists():
        parts += [title("Contributors", "-"), md_to_rst(contributors.read_text())]
    return "\n".join(parts).rstrip() + "\n"


def main(argv):
    check = "--check" in argv
    names = [arg for arg in argv if not arg.startswith("--")]
    addons = [Path(name).resolve() for name in names] or sorted(
        path.parent for path in ROOT.glob("*/__manifest__.py") if (path.parent / "readme").is_dir()
    )
    stale = []
    for addon in addons:
        content = build(addon)
        target = addon / "README.rst"
        if target.exists() and target.read_text() == content:
            continue
        if check:
            stale.append(str(target.relative_to(ROOT)))
        else:
            target.write_text(content)
            print(f"wrote {target.relative_to(ROOT)}")
    if stale:
        print("README.rst out of date (run: python tools/build_readme.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
