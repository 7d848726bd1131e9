"""The bottom layer: configuration, typed errors, model references, the data classes that
cross boundaries, the rules on text that several layers apply, and when progress bars are
drawn. It imports nothing from rearag's other packages; every other package may import it."""
