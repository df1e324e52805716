"""Training data and losses (the loop is :mod:`clickmatte.model.train`): the crop bank and sampler
(:mod:`.data`), generated pictures (:mod:`.synthetic`), augmentation (:mod:`.augment`), training clicks
(:mod:`.click_sampling`), real object masks (:mod:`.real_objects`), losses (:mod:`.losses`), refiner
tuning (:mod:`.refiner_tuning`) and the fixed dev split (:mod:`.splits`).
"""
