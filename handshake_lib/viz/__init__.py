"""Widgets and pictures: annotated hex views, sequence (ladder) diagrams and state diagrams.

Everything here renders data the protocol code computed (spans, transmissions, state-table rows); none
of it decodes or simulates anything itself.  Figures are drawn on ``matplotlib.figure.Figure`` objects
(no pyplot global state), so a widget can keep one figure and redraw it quickly.
"""

from .figures import show_figures_in_ipython
from .hexview import HexView, render_hex_html, render_hex_text
from .sequence import Arrow, draw_sequence
from .statediagram import draw_state_diagram

# In a notebook, a Figure returned by a lesson function should draw as a picture.
show_figures_in_ipython()

__all__ = ["Arrow", "HexView", "draw_sequence", "draw_state_diagram", "render_hex_html", "render_hex_text"]
