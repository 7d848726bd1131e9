"""The bottom layer: configuration, typed errors, model references and the data classes that
cross boundaries. It imports nothing from rearag's other packages; every other package may
import it."""
