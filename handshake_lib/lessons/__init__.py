"""The widgets and pictures each notebook uses, one module per lesson (``tcp`` is lesson 01).

A lesson module only arranges what the protocol library computes; the notebooks import from here so
that the notebook cells stay short and the behaviour is tested like the rest of the library.
"""
