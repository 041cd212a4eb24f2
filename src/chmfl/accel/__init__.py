"""Everything that makes a training or prediction step faster or smaller without changing what
it computes: the same function, the same parameters and state_dict, gradients equal up to float
summation order (docs/performance.md).

* ``options``: ``SpeedOptions`` (the runtime settings of this package), ``apply`` / ``remove``
  on a network, the optimiser (fused Adam), compile modes.
* ``fastconv``: conv3d weight gradients as large GEMMs; in-place ELUs.
* ``lowmem``: in-place activated BatchNorm, split decoder concatenations, the malloc mmap
  threshold.
* ``layout``: channels_last_3d weights and HMFL pooling in memory order.
* ``stacked``: K fold models in one ``torch.func`` step (a measurement, not a training mode).

Networks (``chmfl.models``) never import this package: options swap module classes from the
outside, and a network declares at most one hook for them (``norm_act_pair``, which names a
BatchNorm/ELU pair that its forward runs back to back; ``docs/architecture.md``). Nothing is
imported here so that ``chmfl.accel.options`` stays free of torch for readers of settings.
"""
