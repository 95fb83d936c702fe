# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The charts of the periodic report (R11.3) as inline SVG, drawn by matplotlib on the mail server
(Debian's python3-matplotlib, installed by playbooks/report.yml; docs/reports.md says why there).

The same report gives the same bytes: no date or tool version in the metadata, element ids from a fixed
salt (one per chart, so two charts in one page never share an id), text kept as text so the browser draws
the Vietnamese letters with its own fonts.
"""

from __future__ import annotations

import io

from ansible_collections.sonla.mail.plugins.module_utils._report import ACTION_TITLES, ACTIONS


def _figure_svg(plt, figure, name: str) -> str:
    out = io.StringIO()
    with plt.rc_context({"svg.hashsalt": f"sonla-report-{name}"}):
        figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    plt.close(figure)
    text = out.getvalue()
    text = text[text.index("<svg"):]  # inline: no XML declaration or doctype inside the HTML page
    # matplotlib names the parts of every figure alike (figure_1, axes_1): prefix them, one page holds several.
    return text.replace('id="', f'id="{name}-').replace('href="#', f'href="#{name}-').replace("url(#", f"url(#{name}-")


def svg_charts(report: dict) -> dict[str, str]:
    """Three charts: account changes per agency, mail per agency, the quota-use distribution."""
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    matplotlib.rcParams.update({"svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": 9})
    names = [agency["name"] for agency in report["agencies"]] or ["-"]
    positions = list(range(len(names)))
    charts = {}

    figure, axes = plt.subplots(figsize=(7, 0.35 * len(names) + 1.6))
    left = [0] * len(names)
    for action in ACTIONS:
        values = [agency[action] for agency in report["agencies"]] or [0]
        axes.barh(positions, values, left=left, label=ACTION_TITLES[action])
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes.set_yticks(positions, names)
    axes.invert_yaxis()
    axes.set_title(f"Thay đổi tài khoản theo đơn vị - {report['title']}")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.tight_layout()
    charts["1-accounts"] = _figure_svg(plt, figure, "accounts")

    figure, axes = plt.subplots(figsize=(7, 0.35 * len(names) + 1.6))
    height = 0.4
    for offset, key, title in ((-height / 2, "sent", "Gửi đi"), (height / 2, "received", "Nhận")):
        values = [agency[key] for agency in report["agencies"]] or [0]
        axes.barh([p + offset for p in positions], values, height=height, label=title)
    axes.set_yticks(positions, names)
    axes.invert_yaxis()
    axes.set_title(f"Thư gửi và nhận theo đơn vị - {report['title']}")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.tight_layout()
    charts["2-mail"] = _figure_svg(plt, figure, "mail")

    figure, axes = plt.subplots(figsize=(7, 3))
    buckets = report["quota_distribution"]
    axes.bar(list(buckets), list(buckets.values()), color="#4a7ab5")
    axes.set_title("Phân bố mức sử dụng dung lượng hộp thư")
    axes.set_ylabel("Số hộp thư")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    charts["3-quota"] = _figure_svg(plt, figure, "quota")
    return charts
