"""The measured world: `testbed run` on an emulated topology (never imports `testbed.sim`).

Modules, one concept each: ``spec`` (the experiment file), ``runner`` (up, agents, benchmark, probe,
predict, measure, down), ``agents`` (typed client of the node agents), ``predict`` (top k plus native
configurations, pure), ``speeds`` (compute-speed factors), ``results`` (tables in memory), ``folder`` (the
run-folder contract: the only writer and reader), ``summary`` (error, Spearman, regret), ``plots``, ``cli``.
"""
