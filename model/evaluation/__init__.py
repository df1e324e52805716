"""Evaluation (the command line is :mod:`clickmatte.model.evaluate`): data folders (:mod:`.eval_data`),
engines (:mod:`.eval_engines`), the click loop (:mod:`.eval_loop`), the click simulator
(:mod:`.click_simulator`), metrics (:mod:`.metrics`), the refinement study (:mod:`.refine_study`),
masks as interactive segmentation (:mod:`.mask_eval`), the classical baseline (:mod:`.classical`) and
the report (:mod:`.eval_report`).
"""
