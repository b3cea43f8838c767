"""What the other layers read and write: task specs, dataset importers (SWE-bench and its recipe
table, Harbor), episode records (their exports for training are `swe_env.exports`, above the tool registry).
"""
