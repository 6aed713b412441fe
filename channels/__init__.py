# channels
