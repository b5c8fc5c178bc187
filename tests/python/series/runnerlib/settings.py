"""The runner's configuration, from the environment variables the series' Compose file sets."""

from pydantic import BaseSettings, Field


class Settings(BaseSettings):
    port: int = Field(5000, env="PORT")
    log_level_name: str = Field("INFO", env="LOG_LEVEL")
    # The series runs each component in a container reached by its name; outside containers the
    # "name" is simply the host the others reach this runner (or discovery) on.
    container_name: str = Field(..., env="CONTAINER_NAME")
    runner_discovery_container_name: str = Field(..., env="RUNNER_DISCOVERY_CONTAINER_NAME")
    runner_discovery_port: int = Field(..., env="RUNNER_DISCOVERY_PORT")

    @property
    def host(self) -> str:
        """The base URL this runner registers, as the controller will call it."""
        return f"http://{self.container_name}:{self.port}"

    @property
    def runner_discovery_uri(self) -> str:
        return f"http://{self.runner_discovery_container_name}:{self.runner_discovery_port}"


# Every field comes from the environment (or its default), which mypy cannot see.
settings = Settings()  # type: ignore[call-arg]
