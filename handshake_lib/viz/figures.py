"""Small helpers shared by the pictures: making a figure without pyplot, and turning it into PNG bytes.

Why not pyplot: a pyplot figure is registered globally, so a notebook would show it twice (once as the
cell's value and once by the inline backend) and a widget that redraws would leak figures.  A bare
``Figure`` is shown by IPython only once something has registered a display formatter for it, which
normally happens when pyplot starts the inline backend; :func:`show_figures_in_ipython` registers one
without pyplot, so a lesson's ``state_machine_picture()`` draws as a picture, not as
``<Figure size ...>``.

Measured on the course's 2-core machine, a ladder diagram with 7 arrows costs ~7 ms to (re)build
and then ~37 ms to rasterise with Agg (almost all of it glyph rendering) but ~16 ms to write as SVG
with text left as text (``svg.fonttype = "none"``: the browser draws the glyphs).  Widgets that
redraw on every slider step therefore show SVG; PNG is there for files and for tests.
"""

from __future__ import annotations

import io

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

__all__ = ["axes_for", "figure_png", "figure_svg", "show_figures_in_ipython"]


def show_figures_in_ipython() -> bool:
    """Teach a running IPython kernel to display ``Figure`` objects as PNG; False outside IPython.

    Only a display formatter is added: matplotlib's backend and pyplot's state are left alone.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    formatter = shell.display_formatter.formatters["image/png"]
    formatter.for_type(Figure, lambda figure: figure_png(figure, dpi=100))
    return True


def axes_for(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """Return ``(figure, axes)``: the caller's axes emptied, or a fresh Agg-backed figure.

    Emptying removes the drawn artists but keeps the axes' tick objects: ``Axes.clear`` rebuilds
    those, which alone costs about 10 ms, a fifth of a widget's budget.
    """
    if ax is not None:
        for artist in [*ax.patches, *ax.texts, *ax.lines, *ax.collections, *ax.images, *ax.artists]:
            artist.remove()
        ax.set_title("")
        return ax.figure, ax
    figure = Figure(figsize=figsize, layout=None)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def figure_png(figure: Figure, *, dpi: float = 80) -> bytes:
    """Render ``figure`` with Agg and return PNG bytes (for an ``ipywidgets.Image``)."""
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    # print_png straight on the canvas skips savefig's bookkeeping (bbox, facecolor swaps), which is
    # a measurable share of a widget's redraw budget.
    if figure.dpi != dpi:
        figure.set_dpi(dpi)
    buffer = io.BytesIO()
    # Fast zlib: the picture is a few hundred kB raw, and the notebook is local or one hop away.
    canvas.print_png(buffer, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def figure_svg(figure: Figure) -> bytes:
    """Render ``figure`` as SVG with text kept as text (fast, crisp, and searchable in the page).

    The hash salt is fixed so the same picture gives the same bytes (clip-path ids are hashes), and
    the date is left out for the same reason.
    """
    buffer = io.BytesIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "handshakes"}):
        FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None})
    return buffer.getvalue()
