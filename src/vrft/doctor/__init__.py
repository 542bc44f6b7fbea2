"""`vrft doctor`: sample before training and say why the reward will not move.

`vrft.doctor.signals`: the pure learning-signal functions shared with the training-time logging;
`vrft.doctor.memory`: the memory estimate; `vrft.doctor.run`: sampling and scoring as `vrft train`
would; `vrft.doctor.report`: the figures, the printed table, doctor.json and doctor.html;
`vrft.doctor.verdict`: the findings, each with the config key that fixes it.
"""
