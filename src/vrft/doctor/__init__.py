"""`vrft doctor`: sample before training and say why the reward will not move.

`vrft.doctor.signals` holds the pure learning-signal functions shared with the training-time
logging; `vrft.doctor.memory` the memory estimate; `vrft.doctor.run` the command's work.
"""
