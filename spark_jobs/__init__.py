"""PySpark jobs: capture decoding into the packet table, and windows for the models.

Nothing here imports Prefect or TensorFlow; each job also runs alone with
``spark-submit``.
"""
