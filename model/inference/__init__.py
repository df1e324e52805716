"""The inference path: :class:`~.predictor.Predictor` (``set_image``, ``predict``, ``refine``), its settings
:class:`~.config.PredictorConfig` (torch-free), click encoding (:mod:`.clicks`) and guided upsampling
(:mod:`.guided_upsample`).
"""
