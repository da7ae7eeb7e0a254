"""The notebook side of vexplore: pure view builders over reports, and the explorer widget.

Builders (no widgets, testable without a browser):
``dot.report_dot`` (graph view as DOT text), ``render.graph_html`` (DOT -> SVG, or a plain
drawing where the ``dot`` binary is missing), ``figures`` (plotly figures), ``tables`` (HTML
tables) and ``code.code_html`` (highlighted generated code). ``explorer.Explorer`` wires them to
ipywidgets. Importing ``vexplore`` never imports this package.
"""
