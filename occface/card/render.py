"""The card as a list of blocks, written out as Markdown (images beside it) and as one
self-contained HTML page (images embedded as data URIs, no script, no external resource).

Blocks: ``("h1"|"h2"|"h3", text)``, ``("p", text)``, ``("ul", [items])``, ``("pre", text)``,
``("table", header, rows)`` and ``("img", file name, caption, PNG bytes)``.  Text is plain
(backticks mark code).
"""

from __future__ import annotations

import base64
import html
import re

CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #1b1b1b; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .3rem; }
h2 { border-bottom: 1px solid #bbb; margin-top: 2rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .92rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: .6rem; white-space: pre-wrap; overflow-wrap: anywhere; font-size: .82rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .9rem; color: #555; }
code { background: #f0f0f0; padding: 0 .2rem; }
"""


def _is_num(cell) -> bool:
    return isinstance(cell, (int, float)) or bool(re.fullmatch(r"[-+]?\d[\d,.]*%?", str(cell)))


def _inline_html(text: str) -> str:
    parts = str(text).split("`")
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))


def _md_cell(cell) -> str:
    return str(cell).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list, front_matter: dict | None = None, image_dir: str = "card_files") -> str:
    lines = []
    if front_matter:
        lines.append("---")
        for k, v in front_matter.items():
            if isinstance(v, list):
                lines.append(f"{k}:")
                lines += [f"- {x}" for x in v]
            else:
                lines.append(f"{k}: {v}")
        lines += ["---", ""]
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + b[1], ""]
        elif kind == "p":
            lines += [b[1], ""]
        elif kind == "ul":
            lines += [f"- {x}" for x in b[1]] + [""]
        elif kind == "pre":
            lines += ["```", b[1].rstrip("\n"), "```", ""]
        elif kind == "table":
            header, rows = b[1], b[2]
            lines.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
            lines.append("| " + " | ".join("---:" if rows and all(_is_num(r[j]) for r in rows) else "---"
                                         for j in range(len(header))) + " |")
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            lines.append("")
        elif kind == "img":
            lines += [f"![{b[2]}]({image_dir}/{b[1]})", "", f"*{b[2]}*", ""]
        else:
            raise ValueError(f"unknown card block {kind!r}")
    return "\n".join(lines)


def to_html(blocks: list, title: str) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>"]
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{_inline_html(b[1])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{_inline_html(b[1])}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline_html(x)}</li>" for x in b[1]) + "</ul>")
        elif kind == "pre":
            out.append(f"<pre>{html.escape(b[1])}</pre>")
        elif kind == "table":
            header, rows = b[1], b[2]
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline_html(h)}</th>" for h in header)
                       + "</tr></thead><tbody>")
            for r in rows:
                cells = [('<td class="num">' if _is_num(c) else "<td>") + _inline_html(c) + "</td>" for c in r]
                out.append("<tr>" + "".join(cells) + "</tr>")
            out.append("</tbody></table>")
        elif kind == "img":
            data = base64.b64encode(b[3]).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b[2])}">'
                       f"<figcaption>{_inline_html(b[2])}</figcaption></figure>")
        else:
            raise ValueError(f"unknown card block {kind!r}")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
