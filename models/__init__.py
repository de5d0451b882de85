"""Autoencoders, training, thresholds, scoring and metrics.

Score contract, used everywhere in netae: a window's score is the mean squared
reconstruction error (MSE) of its scaled features, averaged over every step and
feature of the window. Features are scaled to [0, 1], so the score is a
dimensionless number in [0, 1]. A higher score means more anomalous; a window is
flagged when its score is strictly greater than the model's threshold. A frame
scores the largest score of the windows that contain it, and a host the largest
score of the frames it sent or received (``models.derived_scores``), so both
exceed the threshold exactly when a flagged window involves them.

Nothing here imports Prefect or Spark.
"""
