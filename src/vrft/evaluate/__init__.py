"""Evaluation: batched generation, the paper's metrics (COCO / LVIS AP, accuracy, IoU), protocols.

Evaluators follow a reset / process / evaluate protocol; metrics come from the standard libraries
(pycocotools, the LVIS API), and completions are parsed by the same parser as the rewards.
"""
