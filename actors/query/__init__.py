"""The query actor: the channels (semantic, lexical, entity, temporal, graph), their fusion
into one ranked, explained answer, and the read model it ranks over."""
