"""The tasks bundled with apo, one folder per task (see README.md).

The build installs this folder as the package ``optimizer.bundled_tasks``; it holds data only.
"""
