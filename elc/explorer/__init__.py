"""The embedding explorer (launch.explore): a web page to walk a trained run's embedding
spaces and read what its ELM says about any point.

Modules: :mod:`.catalog` (what a run shows: spaces, tasks, directions; each project builds
one in ``elc.projects.<project>.explorer``), :mod:`.projection` (the 2-D maps),
:mod:`.model` (the ELM asked about one point at a time), :mod:`.loading` (loads all of it)
and :mod:`.page` (the Gradio page).
"""
