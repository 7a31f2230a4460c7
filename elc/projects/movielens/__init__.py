"""The paper's domain: MovieLens movies and users, their tasks, preparation and evaluation."""
