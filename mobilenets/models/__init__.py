"""The model zoo: families written as their papers' tables, the blocks they share, the registry
(`build_model`, `build_backbone`, `list_models`), counts (`profile`) and the table of variants."""
