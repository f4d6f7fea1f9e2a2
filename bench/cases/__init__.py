"""What ``make bench`` times in each lesson's widgets: one module per lesson module, same name.

``bench.cases.<name>`` mirrors ``handshake_lib.lessons.<name>`` and defines ``BENCHMARKS``, read by
:func:`bench.widgets.discover` (the convention is in bench/README.md).  Lesson modules hold layout only;
the set-up code that builds a widget and cycles its inputs lives here.
"""
