"""What the other layers read and write: task specs, dataset importers (SWE-bench and its recipe
table, Harbor), episode records and their exports.
"""
